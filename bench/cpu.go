package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processTree lists pid and all its descendants, pid first, from /proc.
func processTree(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) < 2 {
			continue
		}
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		parent, _ := strconv.Atoi(f[1])
		children[parent] = append(children[parent], child)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// statFields are the fields of /proc/PID/stat after the command name, which sits in
// parentheses and may hold spaces: f[0] is the state (field 3 of proc(5)).
func statFields(b []byte) []string {
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// TreeCPU is the CPU time (user and system) that pid and all its descendants have used,
// with that of the descendants that exited and were waited for (cutime and cstime): a
// server that forks a process per connection (Dovecot) is charged for the ones that ended
// too. A descendant that exits between the listing and the read of its times is missed.
func TreeCPU(pid int) (time.Duration, error) {
	var ticks int64
	for _, p := range processTree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if p == pid {
				return 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
			}
			continue
		}
		// utime, stime, cutime, cstime are fields 14 to 17 of proc(5); f[0] is field 3.
		f := statFields(b)
		if len(f) < 15 {
			return 0, fmt.Errorf("read CPU time of process %d: short /proc stat", p)
		}
		for _, s := range f[11:15] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read CPU time of process %d: %w", p, err)
			}
			ticks += v
		}
	}
	return time.Duration(ticks) * clockTick, nil
}

// selfCPU is the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the CPU a run costs the server's process tree and the load generator.
type cpuMeter struct {
	pid          int
	start, end   time.Time
	server, self time.Duration // at the start, then the difference at the end
	err          error
}

// startCPU reads the CPU times at the start of a run; pid 0 measures only the load generator.
func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, start: time.Now(), self: selfCPU()}
	if pid > 0 {
		m.server, m.err = TreeCPU(pid)
	}
	return m
}

// stop reads the CPU times at the end of the run's clock: operations still in flight
// then finish after it, as none was in flight at the start (the clients that log in first
// do so before it).
func (m *cpuMeter) stop() {
	m.end = time.Now()
	m.self = selfCPU() - m.self
	if m.pid > 0 && m.err == nil {
		now, err := TreeCPU(m.pid)
		m.server, m.err = now-m.server, err
	}
}

// record writes what the meter measured over ops operations to rep.Figures:
// client_cpu_us_per_op (this process), server_cpu_us_per_op (the server's process tree),
// server_cpu_percent (the server's CPU time over the wall time; 200 is two cores busy)
// and load1 (the load average at the end, to tell a quiet run from a shared one).
func (m *cpuMeter) record(rep *Report, ops uint64) error {
	if rep.Figures == nil {
		rep.Figures = map[string]float64{}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				rep.Figures["load1"] = v
			}
		}
	}
	if ops == 0 {
		return m.err
	}
	rep.Figures["client_cpu_us_per_op"] = float64(m.self.Microseconds()) / float64(ops)
	if m.pid > 0 && m.err == nil {
		rep.Figures["server_cpu_us_per_op"] = float64(m.server.Microseconds()) / float64(ops)
		if wall := m.end.Sub(m.start); wall > 0 {
			rep.Figures["server_cpu_percent"] = 100 * m.server.Seconds() / wall.Seconds()
		}
	}
	return m.err
}
