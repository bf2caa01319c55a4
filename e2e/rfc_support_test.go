package e2e

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// rfcRow is one row of docs/rfc-support.md.
type rfcRow struct {
	rfc          string
	capabilities []string
	status       string // Yes, Partial or No
}

// readRFCTable parses the table in docs/rfc-support.md: the capability column holds atoms in
// backquotes, the status column starts with Yes, Partial or No.
func readRFCTable(t *testing.T) []rfcRow {
	t.Helper()
	doc, err := os.ReadFile("../docs/rfc-support.md")
	if err != nil {
		t.Fatalf("read the RFC table: %v", err)
	}
	var rows []rfcRow
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 6 || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| RFC ") {
			continue
		}
		row := rfcRow{rfc: strings.TrimSpace(cells[1]), status: strings.Fields(cells[4] + " ?")[0]}
		for _, atom := range strings.Split(cells[2], ",") {
			if atom = strings.Trim(strings.TrimSpace(atom), "`"); atom != "" && atom != "—" {
				row.capabilities = append(row.capabilities, strings.ToUpper(atom))
			}
		}
		switch row.status {
		case "Yes", "Partial", "No":
		default:
			t.Errorf("RFC %s: status %q is not Yes, Partial or No", row.rfc, row.status)
		}
		rows = append(rows, row)
	}
	if len(rows) < 30 {
		t.Fatalf("the RFC table has %d rows; is docs/rfc-support.md still a table?", len(rows))
	}
	return rows
}

// TestRFCSupportTable checks docs/rfc-support.md against what a live `strata serve`
// advertises: before login (plaintext on loopback, IMAPS, plaintext on a non-loopback
// address) and after login.
func TestRFCSupportTable(t *testing.T) {
	rows := readRFCTable(t)
	host := nonLoopbackIPv4(t)
	srv := startServe(t, t.TempDir())
	// The search index is on by default: SEARCH=FUZZY is announced (RFC 6203, fuzzy.go).
	remote := startServe(t, t.TempDir(), "--imap-listen", net.JoinHostPort(host, "0"), "--imaps-listen", "")

	advertised := map[string][]string{} // capability -> situations it was advertised in
	note := func(situation, caps string) {
		for _, c := range strings.Fields(caps) {
			c = strings.ToUpper(c)
			if name, _, ok := strings.Cut(c, "="); ok && name == "APPENDLIMIT" {
				c = name // RFC 7889 3: APPENDLIMIT=<n>
			}
			advertised[c] = append(advertised[c], situation)
		}
	}
	plain := dialCapabilities(t, func() (net.Conn, error) { return net.Dial("tcp", srv.imapAddr) }, true)
	note("plaintext before login", plain[0])
	note("plaintext after login", plain[1])
	secure := dialCapabilities(t, func() (net.Conn, error) {
		return tls.Dial("tcp", srv.imapsAddr, &tls.Config{InsecureSkipVerify: true})
	}, true)
	note("IMAPS before login", secure[0])
	note("IMAPS after login", secure[1])
	note("non-loopback plaintext before login", dialCapabilities(t, func() (net.Conn, error) {
		return net.Dial("tcp", remote.imapAddr)
	}, false)[0])

	inTable := map[string]rfcRow{}
	for _, row := range rows {
		for _, c := range row.capabilities {
			if prev, ok := inTable[c]; ok {
				t.Errorf("capability %s is in the rows of RFC %s and RFC %s", c, prev.rfc, row.rfc)
			}
			inTable[c] = row
		}
	}
	var names []string
	for c := range advertised {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		row, ok := inTable[c]
		switch {
		case !ok:
			t.Errorf("the server advertises %s (%s) but docs/rfc-support.md has no row for it", c, strings.Join(advertised[c], ", "))
		case row.status == "No":
			t.Errorf("the server advertises %s (%s) but the row of RFC %s says No", c, strings.Join(advertised[c], ", "), row.rfc)
		}
	}
	for _, row := range rows {
		if row.status == "No" {
			continue
		}
		for _, c := range row.capabilities {
			if _, ok := advertised[c]; !ok {
				t.Errorf("RFC %s says %s for %s, but the server never advertises it", row.rfc, row.status, c)
			}
		}
	}
}

// dialCapabilities connects, asks for CAPABILITY and, if login is true, logs in as the demo
// user and asks again. It returns the capability lists.
func dialCapabilities(t *testing.T, dial func() (net.Conn, error), login bool) []string {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if greeting, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q: %v", greeting, err)
	}
	command := func(tag, line string) string {
		t.Helper()
		if _, err := conn.Write([]byte(tag + " " + line + "\r\n")); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var caps string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			l = strings.TrimRight(l, "\r\n")
			if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
				caps = rest
			}
			if rest, ok := strings.CutPrefix(l, tag+" "); ok {
				if !strings.HasPrefix(rest, "OK") {
					t.Fatalf("%s: %s", line, rest)
				}
				return caps
			}
		}
	}
	result := []string{command("c1", "CAPABILITY")}
	if login {
		command("l1", "LOGIN demo@example.com demo")
		result = append(result, command("c2", "CAPABILITY"))
	}
	return result
}

// nonLoopbackIPv4 returns an address of this machine that is not loopback, so that a
// connection to it is not trusted with plaintext passwords.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() != nil && !ipnet.IP.IsLoopback() {
			return ipnet.IP.String()
		}
	}
	t.Fatalf("this machine has no non-loopback IPv4 address, needed to see LOGINDISABLED (addresses: %v)", addrs)
	return ""
}
