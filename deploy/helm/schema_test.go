package helm

import (
	"strings"
	"testing"
)

// TestSchemaRejectsBadValues: values.schema.json refuses unknown keys and bad values before
// anything renders, with the offending key in the error.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string // in the error
	}{
		{"four voters", map[string]any{"metadata": map[string]any{"replicas": 4}}, "/metadata/replicas"},
		{"misspelt key", map[string]any{"metadata": map[string]any{"replica": 3}}, "replica"},
		{"unknown top-level key", map[string]any{"frontends": map[string]any{}}, "frontends"},
		{"external etcd without endpoints", map[string]any{"etcd": map[string]any{"mode": "external"}}, "/etcd/endpoints"},
		{"etcd mode", map[string]any{"etcd": map[string]any{"mode": "embedded"}}, "/etcd/mode"},
		{"drain timeout as a duration", map[string]any{"frontend": map[string]any{"drainTimeoutSeconds": "30s"}}, "/frontend/drainTimeoutSeconds"},
		{"negative preStop", map[string]any{"frontend": map[string]any{"preStopSeconds": -1}}, "/frontend/preStopSeconds"},
		{"S3 endpoint with a scheme", map[string]any{"s3": map[string]any{"endpoint": "https://s3.example.net"}}, "/s3/endpoint"},
		{"cert-manager without an IMAP issuer", map[string]any{"certManager": map[string]any{"enabled": true,
			"imap": map[string]any{"dnsNames": []any{"imap.example.net"}}}}, "/certManager/imap/issuerRef/name"},
		{"cert-manager with neither a CA nor an issuer", map[string]any{"certManager": map[string]any{"enabled": true,
			"imap":    map[string]any{"dnsNames": []any{"imap.example.net"}, "issuerRef": map[string]any{"name": "acme"}},
			"cluster": map[string]any{"createCA": false}}}, "/certManager/cluster/issuerRef/name"},
		{"root user", map[string]any{"runAsUser": 0}, "/runAsUser"},
		{"NetworkPolicy switch as a string", map[string]any{"networkPolicy": map[string]any{"enabled": "yes"}}, "/networkPolicy/enabled"},
		{"fullnameOverride starting with a digit", map[string]any{"fullnameOverride": "1mail"}, "/fullnameOverride"},
		{"fullnameOverride too long", map[string]any{"fullnameOverride": strings.Repeat("m", 41)}, "/fullnameOverride"},
		{"Secret name with capitals", map[string]any{"imapTLS": map[string]any{"secretName": "IMAP"}}, "/imapTLS/secretName"},
	} {
		_, _, err := renderChart(tc.values)
		if err == nil {
			t.Errorf("%s: rendered", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error does not name the schema and %s:\n%v", tc.name, tc.want, err)
		}
	}
}
