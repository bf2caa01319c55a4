package helm

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// composeFile is the part of deploy/compose.yaml the chart must agree with.
type composeFile struct {
	Services map[string]struct {
		Image   string   `json:"image"`
		Command []string `json:"command"`
		Ports   []string `json:"ports"`
	} `json:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"etcd", "meta1", "frontend1"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.yaml has no service %s", s)
		}
	}
	return c
}

// dockerfileCmd returns the JSON-form CMD of a Dockerfile.
func dockerfileCmd(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?ms)^CMD (\[.*?\])\s*$`).FindSubmatch([]byte(strings.ReplaceAll(string(data), "\\\n", "")))
	if m == nil {
		t.Fatalf("%s: no CMD [...]", path)
	}
	var cmd []string
	if err := json.Unmarshal(m[1], &cmd); err != nil {
		t.Fatalf("%s: CMD: %v", path, err)
	}
	return cmd
}

// flagValues maps each --flag of args to its value ("" for a bare boolean flag).
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			continue
		}
		if n, v, ok := strings.Cut(name, "="); ok {
			out[n] = v
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			out[name] = args[i+1]
			i++
		} else {
			out[name] = ""
		}
	}
	return out
}

// port returns the port of an address or URL ending in ":port".
func port(addr string) string {
	return addr[strings.LastIndex(addr, ":")+1:]
}

// compareFlags checks that the chart's and compose's flags of one process are the same but
// for the chart-only ones, with the same values where both name a fixed one, and the same
// ports where the addresses differ by host.
func compareFlags(t *testing.T, what string, chart, compose map[string]string, chartOnly map[string]string, sameValue, samePort []string) {
	t.Helper()
	var missing, extra []string
	for name := range compose {
		if _, ok := chart[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range chart {
		if _, ok := compose[name]; !ok {
			if _, ok := chartOnly[name]; !ok {
				extra = append(extra, name)
			}
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("%s: compose.yaml passes %v, the chart does not", what, missing)
	}
	if len(extra) > 0 {
		t.Errorf("%s: the chart passes %v, compose.yaml does not (nor is it listed as chart-only)", what, extra)
	}
	for name := range chartOnly {
		if _, ok := compose[name]; ok {
			t.Errorf("%s: --%s is listed as chart-only but compose.yaml passes it too", what, name)
		}
	}
	for _, name := range sameValue {
		if chart[name] != compose[name] {
			t.Errorf("%s: --%s is %q in the chart, %q in compose.yaml", what, name, chart[name], compose[name])
		}
	}
	for _, name := range samePort {
		if port(chart[name]) != port(compose[name]) || port(chart[name]) == "" {
			t.Errorf("%s: --%s port %q in the chart, %q in compose.yaml", what, name, chart[name], compose[name])
		}
	}
}

// TestComposeInStep: the chart runs the images of deploy/compose.yaml with the same flags
// (values from testdata/compose.yaml, which sets what compose.yaml sets), listen ports and
// paths, except the flags listed below with the reason the chart alone needs them. The
// certificate paths differ (compose.yaml mounts one file per member, the chart a Secret per
// role), as do the node IDs and etcd endpoints.
func TestComposeInStep(t *testing.T) {
	compose := readCompose(t)
	r := render(t, "testdata/compose.yaml", nil)

	meta := r.component(t, "metadata").Spec.Containers[0]
	fe := r.component(t, "frontend").Spec.Containers[0]
	etcd := r.component(t, "etcd").Spec.Containers[0]
	for _, tc := range []struct {
		service string
		c       corev1.Container
	}{{"meta1", meta}, {"meta2", meta}, {"meta3", meta}, {"frontend1", fe}, {"frontend2", fe}, {"etcd", etcd}} {
		if want := compose.Services[tc.service].Image; tc.c.Image != want {
			t.Errorf("%s: image %q, compose.yaml runs %q", tc.c.Name, tc.c.Image, want)
		}
	}

	for _, service := range []string{"meta1", "meta2", "meta3"} {
		cmd := compose.Services[service].Command
		if cmd[0] != meta.Args[0] {
			t.Fatalf("%s runs %q, the chart %q", service, cmd[0], meta.Args[0])
		}
		compareFlags(t, "metadata vs "+service, flagValues(meta.Args[1:]), flagValues(cmd[1:]),
			map[string]string{"s3-region": "s3.region"},
			[]string{"data", "grpc-listen", "raft-listen", "metrics-listen", "blob", "s3-endpoint", "s3-bucket",
				"s3-insecure", "s3-path-style"},
			[]string{"grpc-advertise", "raft-advertise"})
	}
	for _, service := range []string{"frontend1", "frontend2"} {
		cmd := compose.Services[service].Command
		if cmd[0] != fe.Args[0] {
			t.Fatalf("%s runs %q, the chart %q", service, cmd[0], fe.Args[0])
		}
		compareFlags(t, "frontend vs "+service, flagValues(fe.Args[1:]), flagValues(cmd[1:]),
			map[string]string{
				"imaps-listen":    "IMAPS with the certificate of imapTLS (compose.yaml serves plain IMAP)",
				"tls-cert":        "STARTTLS and IMAPS",
				"tls-key":         "STARTTLS and IMAPS",
				"drain-timeout":   "matched to terminationGracePeriodSeconds",
				"max-connections": "frontend.maxConnections",
				"s3-region":       "s3.region",
			},
			[]string{"imap-listen", "lmtp-listen", "managesieve-listen", "spool-dir", "blob", "s3-endpoint", "s3-bucket",
				"s3-insecure", "s3-path-style", "allow-plaintext-auth", "metrics-listen"},
			nil)
		for _, published := range compose.Services[service].Ports {
			containerSide := published[strings.LastIndex(published, ":")+1:]
			if !slices.ContainsFunc(fe.Ports, func(p corev1.ContainerPort) bool { return fmt.Sprint(p.ContainerPort) == containerSide }) {
				t.Errorf("compose.yaml publishes %s of %s; the chart's frontend has no container port %s", published, service, containerSide)
			}
		}
	}

	// compose.yaml runs etcd with the image's CMD; the chart gives the same flags for a
	// member of a StatefulSet.
	if len(compose.Services["etcd"].Command) != 0 {
		t.Fatal("compose.yaml's etcd has a command: compare it instead of the Dockerfile's CMD")
	}
	compareFlags(t, "etcd", flagValues(etcd.Args), flagValues(dockerfileCmd(t, "../etcd/Dockerfile")),
		map[string]string{
			"initial-cluster-state": "several members",
			"initial-cluster-token": "several members",
		},
		[]string{"listen-client-urls"},
		[]string{"advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"})
}
