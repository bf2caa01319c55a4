package helm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "strata"
	releaseName = "mail"
	namespace   = "strata"
	// kubeVersion is the cluster version the chart is rendered for: the oldest it supports
	// (Chart.yaml kubeVersion; preStop sleep needs 1.30).
	kubeVersion = "v1.30.0"
)

// valuesFiles are the values files every invariant is checked with; "" is the chart's
// defaults alone.
var valuesFiles = []string{
	"",
	"testdata/five-voters-bundled-etcd.yaml",
	"testdata/cert-manager.yaml",
	"testdata/external-etcd-no-networkpolicy.yaml",
	"testdata/servicemonitor.yaml",
	"testdata/compose.yaml",
}

// certificate is cert-manager.io/v1 Certificate, the fields the chart uses (cert-manager's
// Go module brings a controller's dependencies; its API reference names these fields).
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		CommonName  string   `json:"commonName,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		URIs        []string `json:"uris,omitempty"`
		IsCA        bool     `json:"isCA,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		Usages    []string `json:"usages,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// issuer is cert-manager.io/v1 Issuer, the two kinds the chart makes.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// newObject returns an empty object of the rendered kind, nil for a kind the chart must
// not render.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 Service":
		return &corev1.Service{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	case "cert-manager.io/v1 Certificate":
		return &certificate{}
	case "cert-manager.io/v1 Issuer":
		return &issuer{}
	}
	return nil
}

// rendered is one render of the chart, every object decoded.
type rendered struct {
	name         string // the values file
	values       map[string]any
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	policies     []*networkingv1.NetworkPolicy
	monitors     []*monitoringv1.ServiceMonitor
	certificates []*certificate
	issuers      []*issuer
	notes        string
	objects      []string // "Kind/name" of every object, in manifest order
}

// podTemplate is a workload's pod template with the workload's name.
type podTemplate struct {
	owner string
	spec  *corev1.PodTemplateSpec
}

func (r *rendered) podTemplates() []podTemplate {
	var out []podTemplate
	for _, s := range r.statefulSets {
		out = append(out, podTemplate{"StatefulSet " + s.Name, &s.Spec.Template})
	}
	for _, d := range r.deployments {
		out = append(out, podTemplate{"Deployment " + d.Name, &d.Spec.Template})
	}
	return out
}

// component returns the pod template of the workload whose pods carry that component label.
func (r *rendered) component(t *testing.T, name string) *corev1.PodTemplateSpec {
	t.Helper()
	for _, p := range r.podTemplates() {
		if p.spec.Labels["app.kubernetes.io/component"] == name {
			return p.spec
		}
	}
	t.Fatalf("%s: no pod template of component %q", r.name, name)
	return nil
}

// readValues reads a values file; "" gives no values beyond the chart's defaults.
func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if file == "" {
		return vals
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &vals); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return vals
}

// merge returns base with overlay merged in, maps key by key, recursively.
func merge(base, overlay map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range overlay {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// renderChart renders the chart as `helm template` does, with schema validation, and
// returns the manifest and the notes.
func renderChart(vals map[string]any) (string, string, error) {
	return renderRelease(releaseName, vals)
}

// renderRelease is renderChart for a release of that name.
func renderRelease(name string, vals map[string]any) (string, string, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return "", "", err
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = name
	install.Namespace = namespace
	install.Replace = true
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", "", err
	}
	install.KubeVersion = kv
	rel, err := install.RunWithContext(context.Background(), chrt, vals)
	if err != nil {
		return "", "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return "", "", fmt.Errorf("release of type %T", rel)
	}
	if len(r.Hooks) != 0 {
		return "", "", fmt.Errorf("the chart has %d hooks; the tests check only the manifest", len(r.Hooks))
	}
	return r.Manifest, r.Info.Notes, nil
}

// render renders the chart with the values file and the overrides and decodes every object
// strictly; any error fails the test.
func render(t *testing.T, file string, overrides map[string]any) *rendered {
	t.Helper()
	vals := merge(readValues(t, file), overrides)
	manifest, notes, err := renderChart(vals)
	if err != nil {
		t.Fatalf("render %s: %v", describe(file), err)
	}
	r, err := decodeManifest(manifest)
	if err != nil {
		t.Fatalf("render %s: %v", describe(file), err)
	}
	r.name, r.values, r.notes = describe(file), vals, notes
	return r
}

func describe(file string) string {
	if file == "" {
		return "default values"
	}
	return filepath.Base(file)
}

// decodeManifest decodes every document of a rendered manifest into its type: a duplicate
// key, an unknown field, a field of the wrong case or type, or an unexpected kind is an
// error, as in the API server's strict field validation.
func decodeManifest(manifest string) (*rendered, error) {
	r := &rendered{}
	names := map[string]bool{}
	for i, doc := range strings.Split(manifest, "\n---") {
		data, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
			continue
		}
		var meta struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := k8sjson.UnmarshalCaseSensitivePreserveInts(data, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		obj := newObject(meta.APIVersion, meta.Kind)
		if obj == nil {
			return nil, fmt.Errorf("document %d: unexpected kind %s %s", i, meta.APIVersion, meta.Kind)
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if names[key] {
			return nil, fmt.Errorf("%s rendered twice", key)
		}
		names[key] = true
		r.objects = append(r.objects, key)
		strict, err := k8sjson.UnmarshalStrict(data, obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if len(strict) > 0 {
			return nil, fmt.Errorf("%s: %v", key, strict)
		}
		switch o := obj.(type) {
		case *corev1.Service:
			r.services = append(r.services, o)
		case *appsv1.StatefulSet:
			r.statefulSets = append(r.statefulSets, o)
		case *appsv1.Deployment:
			r.deployments = append(r.deployments, o)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas = append(r.hpas, o)
		case *networkingv1.NetworkPolicy:
			r.policies = append(r.policies, o)
		case *monitoringv1.ServiceMonitor:
			r.monitors = append(r.monitors, o)
		case *certificate:
			r.certificates = append(r.certificates, o)
		case *issuer:
			r.issuers = append(r.issuers, o)
		}
	}
	return r, nil
}

// kinds lists the rendered objects as "Kind/name", sorted.
func (r *rendered) kinds() []string {
	out := slices.Clone(r.objects)
	sort.Strings(out)
	return out
}
