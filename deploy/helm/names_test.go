package helm

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TestObjectNames: with the longest release name Helm accepts (53 characters) or the
// longest fullnameOverride, every object name is valid for its kind, a StatefulSet name
// leaves room for the controller-revision-hash label (63 - 11 characters), and every label
// and port name is valid.
func TestObjectNames(t *testing.T) {
	for _, tc := range []struct {
		release string
		values  map[string]any
	}{
		{strings.Repeat("r", 53), nil},
		{"mail", map[string]any{"fullnameOverride": "f" + strings.Repeat("-x", 19) + "z"}},
	} {
		vals := merge(readValues(t, "testdata/cert-manager.yaml"), tc.values)
		vals = merge(vals, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
		manifest, _, err := renderRelease(tc.release, vals)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeManifest(manifest)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range r.objects {
			kind, name, _ := strings.Cut(obj, "/")
			var errs []string
			switch kind {
			case "Service":
				errs = validation.IsDNS1035Label(name)
			case "StatefulSet":
				errs = validation.IsDNS1123Label(name)
				if len(name) > 63-11 {
					errs = append(errs, "longer than 52 characters")
				}
			default:
				errs = validation.IsDNS1123Subdomain(name)
			}
			if len(errs) > 0 {
				t.Errorf("release %s: %s: %v", tc.release, obj, errs)
			}
		}
		for _, svc := range r.services {
			for _, port := range svc.Spec.Ports {
				if errs := validation.IsValidPortName(port.Name); len(errs) > 0 {
					t.Errorf("Service %s port %q: %v", svc.Name, port.Name, errs)
				}
			}
		}
		for _, p := range r.podTemplates() {
			for _, c := range p.spec.Spec.Containers {
				for _, port := range c.Ports {
					if errs := validation.IsValidPortName(port.Name); len(errs) > 0 {
						t.Errorf("%s/%s port %q: %v", p.owner, c.Name, port.Name, errs)
					}
				}
			}
			for k, v := range p.spec.Labels {
				if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
					t.Errorf("release %s: %s label %s=%s: %v", tc.release, p.owner, k, v, errs)
				}
			}
		}
	}
}
