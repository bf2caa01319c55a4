package helm

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// valueAt returns the value at a dotted key of the merged values (chart defaults under the
// file's values).
func valueAt(t *testing.T, vals map[string]any, key string) any {
	t.Helper()
	var cur any = vals
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// chartDefaults returns the chart's values.yaml.
func chartDefaults(t *testing.T) map[string]any {
	t.Helper()
	return readValues(t, chartDir+"/values.yaml")
}

// documentedSecrets returns the values keys the chart README lists under "Secrets you
// provide", with the Secret keys each must hold.
func documentedSecrets(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Secrets you provide")
	if !ok {
		t.Fatal("README.md has no section \"Secrets you provide\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-zA-Z0-9.]+)` \\| ([^|]+) \\|")
	code := regexp.MustCompile("`([^`]+)`")
	out := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		var keys []string
		for _, k := range code.FindAllStringSubmatch(m[2], -1) {
			keys = append(keys, k[1])
		}
		out[m[1]] = keys
	}
	if len(out) == 0 {
		t.Fatal("README.md lists no Secrets")
	}
	return out
}

// secretUse is one reference of a pod to a key (or, with key "", all keys) of a Secret.
type secretUse struct{ secret, key, where string }

func secretUses(r *rendered) []secretUse {
	var uses []secretUse
	for _, p := range r.podTemplates() {
		for _, v := range p.spec.Spec.Volumes {
			if v.Secret != nil {
				for _, c := range p.spec.Spec.Containers {
					for _, m := range c.VolumeMounts {
						if m.Name == v.Name {
							for _, key := range filesRead(c, m) {
								uses = append(uses, secretUse{v.Secret.SecretName, key, p.owner + " volume " + v.Name})
							}
						}
					}
				}
			}
			if v.ConfigMap != nil || v.Projected != nil {
				uses = append(uses, secretUse{"unexpected volume source", v.Name, p.owner})
			}
		}
		for _, c := range p.spec.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					uses = append(uses, secretUse{e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key, p.owner + " env " + e.Name})
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					uses = append(uses, secretUse{"unexpected ConfigMap", e.Name, p.owner})
				}
			}
			if len(c.EnvFrom) != 0 {
				uses = append(uses, secretUse{"unexpected envFrom", c.Name, p.owner})
			}
		}
	}
	return uses
}

// filesRead lists the files of the mount that the container's arguments name.
func filesRead(c corev1.Container, m corev1.VolumeMount) []string {
	var files []string
	for _, a := range c.Args {
		if rest, ok := strings.CutPrefix(a, m.MountPath+"/"); ok {
			files = append(files, rest)
		}
	}
	return files
}

// TestSecretsRenderedOrDocumented: every Secret a pod reads is made by the chart (a
// cert-manager Certificate) or is named by a values key that README.md lists as the user's,
// with the very keys the pod reads; a pod reads a file of every mounted Secret.
func TestSecretsRenderedOrDocumented(t *testing.T) {
	documented := documentedSecrets(t)
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		vals := merge(chartDefaults(t), r.values)
		madeByCertManager := map[string]bool{}
		for _, c := range r.certificates {
			madeByCertManager[c.Spec.SecretName] = true
		}
		mounted := map[string]bool{}
		for _, u := range secretUses(r) {
			mounted[u.where] = true
			if madeByCertManager[u.secret] {
				if !slices.Contains([]string{"ca.crt", "tls.crt", "tls.key"}, u.key) {
					t.Errorf("%s: %s reads %q of %s, which cert-manager does not write", r.name, u.where, u.key, u.secret)
				}
				continue
			}
			var ok bool
			for valuesKey, secretKeys := range documented {
				if valueAt(t, vals, valuesKey) != u.secret {
					continue
				}
				for _, k := range secretKeys {
					// A documented key is either the key itself or a values key naming it.
					if k == u.key || valueAt(t, vals, k) == u.key {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("%s: %s reads key %q of Secret %q, neither rendered nor documented in README.md", r.name, u.where, u.key, u.secret)
			}
		}
		for _, p := range r.podTemplates() {
			for _, v := range p.spec.Spec.Volumes {
				if v.Secret != nil && !mounted[p.owner+" volume "+v.Name] {
					t.Errorf("%s: %s mounts Secret %s but reads no file of it", r.name, p.owner, v.Secret.SecretName)
				}
			}
		}
	}
}

// TestCertManagerCertificates: with cert-manager, each cluster certificate carries exactly
// one URI SAN, the identity internal/clustertls requires of its role, with the key usages
// of its side of the handshake, issued by the cluster CA the chart makes; the IMAP one
// names the configured DNS names.
func TestCertManagerCertificates(t *testing.T) {
	r := render(t, "testdata/cert-manager.yaml", nil)
	want := map[string]struct {
		uri    string
		server bool
	}{
		"strata-cluster-metadata": {"strata://node/mail-strata-metadata", true},
		"strata-cluster-frontend": {"strata://frontend/mail-strata-frontend", true},
		"strata-cluster-admin":    {"strata://admin/cluster", false},
	}
	issuers := map[string]*issuer{}
	for _, is := range r.issuers {
		issuers[is.Name] = is
	}
	var caSecret string
	for _, c := range r.certificates {
		if c.Spec.IsCA {
			caSecret = c.Spec.SecretName
			if is := issuers[c.Spec.IssuerRef.Name]; is == nil || is.Spec.SelfSigned == nil {
				t.Errorf("the cluster CA is not issued by a self-signed Issuer of the chart")
			}
		}
	}
	var seen int
	for _, c := range r.certificates {
		if c.Spec.PrivateKey == nil || c.Spec.PrivateKey.Algorithm != "ECDSA" {
			t.Errorf("Certificate %s: private key %+v", c.Name, c.Spec.PrivateKey)
		}
		if c.Spec.IssuerRef.Group != "cert-manager.io" || c.Spec.IssuerRef.Name == "" {
			t.Errorf("Certificate %s: issuerRef %+v", c.Name, c.Spec.IssuerRef)
		}
		w, ok := want[c.Spec.SecretName]
		if !ok {
			continue
		}
		seen++
		if !slices.Equal(c.Spec.URIs, []string{w.uri}) || len(c.Spec.DNSNames) != 0 {
			t.Errorf("Certificate %s: URIs %v DNS names %v, want the one URI %s", c.Name, c.Spec.URIs, c.Spec.DNSNames, w.uri)
		}
		if slices.Contains(c.Spec.Usages, "client auth") != true || slices.Contains(c.Spec.Usages, "server auth") != w.server {
			t.Errorf("Certificate %s: usages %v (server auth wanted: %v)", c.Name, c.Spec.Usages, w.server)
		}
		is := issuers[c.Spec.IssuerRef.Name]
		if c.Spec.IssuerRef.Kind != "Issuer" || is == nil || is.Spec.CA == nil || is.Spec.CA.SecretName != caSecret || caSecret == "" {
			t.Errorf("Certificate %s: not issued by the chart's cluster CA: %+v", c.Name, c.Spec.IssuerRef)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d cluster certificates rendered", seen, len(want))
	}
	var imap bool
	for _, c := range r.certificates {
		if c.Spec.SecretName == "imap-example-net" {
			imap = true
			if !slices.Equal(c.Spec.DNSNames, []string{"imap.example.net"}) || c.Spec.IssuerRef.Name != "letsencrypt" || c.Spec.IssuerRef.Kind != "ClusterIssuer" {
				t.Errorf("IMAP Certificate: %+v", c.Spec)
			}
		}
	}
	if !imap {
		t.Error("no IMAP Certificate")
	}
}
