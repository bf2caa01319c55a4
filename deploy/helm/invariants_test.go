package helm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestRenderedObjects: each values file renders what it asks for, and nothing else.
func TestRenderedObjects(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // kinds that must be there ("Kind/name")
		not  []string // kinds that must not
	}{
		{"", []string{"StatefulSet/mail-strata-metadata", "StatefulSet/mail-strata-etcd", "Deployment/mail-strata-frontend",
			"HorizontalPodAutoscaler/mail-strata-frontend", "PodDisruptionBudget/mail-strata-metadata", "PodDisruptionBudget/mail-strata-frontend",
			"NetworkPolicy/mail-strata-metadata", "NetworkPolicy/mail-strata-frontend", "NetworkPolicy/mail-strata-etcd"},
			[]string{"ServiceMonitor/", "Certificate/", "Issuer/"}},
		{"testdata/five-voters-bundled-etcd.yaml", []string{"StatefulSet/mail-strata-etcd"}, []string{"Certificate/"}},
		{"testdata/cert-manager.yaml", []string{"Certificate/imap-example-net", "Certificate/strata-cluster-metadata",
			"Certificate/strata-cluster-frontend", "Certificate/strata-cluster-admin", "Certificate/mail-strata-cluster-ca",
			"Issuer/mail-strata-cluster-ca", "Issuer/mail-strata-selfsigned"}, nil},
		{"testdata/external-etcd-no-networkpolicy.yaml", []string{"Deployment/mail-strata-frontend"},
			[]string{"StatefulSet/mail-strata-etcd", "Service/mail-strata-etcd", "NetworkPolicy/", "HorizontalPodAutoscaler/"}},
		{"testdata/servicemonitor.yaml", []string{"ServiceMonitor/mail-strata"}, nil},
	} {
		r := render(t, tc.file, nil)
		fe := r.component(t, "frontend").Spec.Containers[0]
		etcd, _ := argValue(fe.Args, "etcd")
		if !strings.Contains(r.notes, "--etcd "+etcd+" ") || !strings.Contains(r.notes, "app.kubernetes.io/component=admin") {
			t.Errorf("%s: NOTES.txt does not tell how to run admin commands against --etcd %s:\n%s", r.name, etcd, r.notes)
		}
		got := r.kinds()
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: %s not rendered; got %v", r.name, w, got)
			}
		}
		for _, n := range tc.not {
			for _, g := range got {
				if strings.HasPrefix(g, n) {
					t.Errorf("%s: %s rendered", r.name, g)
				}
			}
		}
	}
}

// selectorOf turns a LabelSelector into a labels.Selector.
func selectorOf(t *testing.T, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// TestMetadataQuorum: 3 or 5 voters in a StatefulSet with persistent volumes, parallel pod
// management and anti-affinity, and a PodDisruptionBudget that never takes the group below
// a quorum while letting a drain evict one voter at a time.
func TestMetadataQuorum(t *testing.T) {
	for _, voters := range []int{3, 5} {
		for _, f := range valuesFiles {
			r := render(t, f, map[string]any{"metadata": map[string]any{"replicas": voters}})
			var sts *appsv1.StatefulSet
			for _, s := range r.statefulSets {
				if s.Name == "mail-strata-metadata" {
					sts = s
				}
			}
			if sts == nil {
				t.Fatalf("%s: no metadata StatefulSet", r.name)
			}
			if sts.Spec.Replicas == nil || int(*sts.Spec.Replicas) != voters {
				t.Errorf("%s: replicas %v, want %d", r.name, sts.Spec.Replicas, voters)
			}
			if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
				t.Errorf("%s: podManagementPolicy %q", r.name, sts.Spec.PodManagementPolicy)
			}
			if len(sts.Spec.VolumeClaimTemplates) != 1 || !mountsAt(sts.Spec.Template.Spec.Containers[0], sts.Spec.VolumeClaimTemplates[0].Name, "/data") {
				t.Errorf("%s: the data volume claim is not mounted at /data (--data)", r.name)
			}
			podLabels := labels.Set(sts.Spec.Template.Labels)
			if !selectorOf(t, sts.Spec.Selector).Matches(podLabels) {
				t.Errorf("%s: the StatefulSet's selector does not match its pods", r.name)
			}
			aa := sts.Spec.Template.Spec.Affinity
			if aa == nil || aa.PodAntiAffinity == nil {
				t.Fatalf("%s: no pod anti-affinity", r.name)
			}
			terms := aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
			for _, w := range aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
				terms = append(terms, w.PodAffinityTerm)
			}
			if len(terms) != 1 || terms[0].TopologyKey != "kubernetes.io/hostname" || !selectorOf(t, terms[0].LabelSelector).Matches(podLabels) {
				t.Errorf("%s: anti-affinity does not keep the voters on different nodes: %+v", r.name, terms)
			}
			hard := len(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 1
			if wantHard := r.values["metadata"].(map[string]any)["antiAffinity"] != "soft"; hard != wantHard {
				t.Errorf("%s: required anti-affinity %v, want %v", r.name, hard, wantHard)
			}

			var budgets int
			for _, pdb := range r.pdbs {
				if !selectorOf(t, pdb.Spec.Selector).Matches(podLabels) {
					continue
				}
				budgets++
				if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.Type != intstr.Int {
					t.Fatalf("%s: the metadata budget is not an integer maxUnavailable: %+v", r.name, pdb.Spec)
				}
				maxUnavailable := pdb.Spec.MaxUnavailable.IntValue()
				quorum := voters/2 + 1
				if voters-maxUnavailable < quorum {
					t.Errorf("%s: %d voters, maxUnavailable %d leaves fewer than a quorum of %d", r.name, voters, maxUnavailable, quorum)
				}
				if maxUnavailable != 1 {
					t.Errorf("%s: %d voters, maxUnavailable %d, want 1 (one voter at a time)", r.name, voters, maxUnavailable)
				}
			}
			if budgets != 1 {
				t.Errorf("%s: %d PodDisruptionBudgets select the metadata pods, want 1", r.name, budgets)
			}
		}
	}
}

func mountsAt(c corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path {
			return true
		}
	}
	return false
}

// argValue returns the value given to --name in args.
func argValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// strataContainers lists the containers of the strata image with their pod template.
func strataContainers(r *rendered) map[*corev1.Container]*corev1.PodTemplateSpec {
	out := map[*corev1.Container]*corev1.PodTemplateSpec{}
	for _, p := range r.podTemplates() {
		for i := range p.spec.Spec.Containers {
			c := &p.spec.Spec.Containers[i]
			if c.Name == "metadata" || c.Name == "frontend" {
				out[c] = p.spec
			}
		}
	}
	return out
}

// TestProbes: every Strata container is probed at /healthz (startup, liveness) and /readyz
// (readiness) on the port its --metrics-listen binds.
func TestProbes(t *testing.T) {
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		containers := strataContainers(r)
		if len(containers) != 2 {
			t.Fatalf("%s: %d strata containers, want metadata and frontend", r.name, len(containers))
		}
		for c := range containers {
			listen, ok := argValue(c.Args, "metrics-listen")
			if !ok {
				t.Errorf("%s/%s: no --metrics-listen", r.name, c.Name)
				continue
			}
			_, port, _ := strings.Cut(listen, ":")
			check := func(kind string, p *corev1.Probe, path string) {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s/%s: no HTTP %s probe", r.name, c.Name, kind)
					return
				}
				if p.HTTPGet.Path != path {
					t.Errorf("%s/%s: %s probe path %q, want %q", r.name, c.Name, kind, p.HTTPGet.Path, path)
				}
				if got := containerPort(c, p.HTTPGet.Port); fmt.Sprint(got) != port {
					t.Errorf("%s/%s: %s probe on port %d, --metrics-listen %s", r.name, c.Name, kind, got, listen)
				}
			}
			check("startup", c.StartupProbe, "/healthz")
			check("liveness", c.LivenessProbe, "/healthz")
			check("readiness", c.ReadinessProbe, "/readyz")
		}
	}
}

// containerPort resolves a named or numbered port of the container; 0 when it has none.
func containerPort(c *corev1.Container, port intstr.IntOrString) int32 {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort
		}
	}
	return 0
}

// TestFrontendGraceOutlastsDrain: the kubelet kills a frontend only after the preStop wait
// and --drain-timeout have both run out, with a margin for the process to exit.
func TestFrontendGraceOutlastsDrain(t *testing.T) {
	const margin = 10 * time.Second
	for _, tc := range []struct{ drain, preStop int }{{30, 5}, {1, 0}, {120, 15}, {3600, 60}} {
		for _, f := range valuesFiles {
			r := render(t, f, map[string]any{"frontend": map[string]any{"drainTimeoutSeconds": tc.drain, "preStopSeconds": tc.preStop}})
			pod := r.component(t, "frontend")
			c := pod.Spec.Containers[0]
			v, ok := argValue(c.Args, "drain-timeout")
			if !ok {
				t.Fatalf("%s: no --drain-timeout", r.name)
			}
			drain, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: --drain-timeout %q: %v", r.name, v, err)
			}
			if drain != time.Duration(tc.drain)*time.Second {
				t.Errorf("%s: --drain-timeout %s, want %ds", r.name, drain, tc.drain)
			}
			var preStop time.Duration
			switch {
			case c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil:
				preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
				if preStop <= 0 {
					t.Errorf("%s: preStop sleep of %s (Kubernetes before 1.33 refuses it)", r.name, preStop)
				}
			case c.Lifecycle != nil:
				t.Fatalf("%s: preStop %+v, want a sleep or none", r.name, c.Lifecycle)
			}
			if preStop != time.Duration(tc.preStop)*time.Second {
				t.Errorf("%s: preStop %s, want %ds", r.name, preStop, tc.preStop)
			}
			if pod.Spec.TerminationGracePeriodSeconds == nil {
				t.Fatalf("%s: no terminationGracePeriodSeconds", r.name)
			}
			grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
			if grace < preStop+drain+margin {
				t.Errorf("%s: grace %s < preStop %s + drain %s + %s", r.name, grace, preStop, drain, margin)
			}
		}
	}
}

// TestSecurityContexts: every container of every pod runs as a non-root user with a
// read-only root filesystem, no privilege escalation, no capabilities and the runtime's
// seccomp profile, and mounts no service account token.
func TestSecurityContexts(t *testing.T) {
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		for _, p := range r.podTemplates() {
			spec := p.spec.Spec
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Errorf("%s %s: mounts a service account token", r.name, p.owner)
			}
			ps := spec.SecurityContext
			if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
				ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s %s: pod securityContext %+v", r.name, p.owner, ps)
			}
			if len(spec.InitContainers) != 0 {
				t.Errorf("%s %s: init containers are not checked here", r.name, p.owner)
			}
			for _, c := range spec.Containers {
				s := c.SecurityContext
				switch {
				case s == nil:
					t.Errorf("%s %s/%s: no securityContext", r.name, p.owner, c.Name)
				case s.RunAsNonRoot == nil || !*s.RunAsNonRoot || s.RunAsUser == nil || *s.RunAsUser == 0:
					t.Errorf("%s %s/%s: may run as root", r.name, p.owner, c.Name)
				case s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem:
					t.Errorf("%s %s/%s: writable root filesystem", r.name, p.owner, c.Name)
				case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
					t.Errorf("%s %s/%s: privilege escalation allowed", r.name, p.owner, c.Name)
				case s.Privileged != nil && *s.Privileged:
					t.Errorf("%s %s/%s: privileged", r.name, p.owner, c.Name)
				case s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) != 0:
					t.Errorf("%s %s/%s: capabilities %+v, want drop ALL", r.name, p.owner, c.Name, s.Capabilities)
				case s.SeccompProfile == nil || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
					t.Errorf("%s %s/%s: seccomp %+v", r.name, p.owner, c.Name, s.SeccompProfile)
				}
			}
		}
	}
}

// adminPod is the labels of an admin pod or job, as README.md tells users to set them.
var adminPod = labels.Set{
	"app.kubernetes.io/name":      "strata",
	"app.kubernetes.io/instance":  releaseName,
	"app.kubernetes.io/component": "admin",
}

// allowed says whether the policy lets a pod with the labels reach the named port of the
// policy's pods.
func allowed(t *testing.T, np *networkingv1.NetworkPolicy, from labels.Set, port string) bool {
	t.Helper()
	for _, rule := range np.Spec.Ingress {
		portMatch := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.Type == intstr.String && p.Port.StrVal == port {
				portMatch = true
			}
		}
		if !portMatch {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			if peer.PodSelector != nil && peer.NamespaceSelector == nil && peer.IPBlock == nil &&
				selectorOf(t, peer.PodSelector).Matches(from) {
				return true
			}
		}
	}
	return false
}

// TestNetworkPolicies: each policy selects the pods of one component, every port it names
// is one of theirs, and only frontends, admin pods and metadata peers reach metadata gRPC,
// only metadata peers reach Raft, only Strata's pods reach the bundled etcd.
func TestNetworkPolicies(t *testing.T) {
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		enabled := r.values["networkPolicy"] == nil || r.values["networkPolicy"].(map[string]any)["enabled"] != false
		if !enabled {
			if len(r.policies) != 0 {
				t.Errorf("%s: NetworkPolicies rendered while disabled", r.name)
			}
			continue
		}
		pods := map[string]labels.Set{"admin": adminPod}
		for _, p := range r.podTemplates() {
			pods[p.spec.Labels["app.kubernetes.io/component"]] = p.spec.Labels
		}
		byComponent := map[string]*networkingv1.NetworkPolicy{}
		for _, np := range r.policies {
			var selected []string
			for _, p := range r.podTemplates() {
				if selectorOf(t, &np.Spec.PodSelector).Matches(labels.Set(p.spec.Labels)) {
					selected = append(selected, p.spec.Labels["app.kubernetes.io/component"])
					for _, rule := range np.Spec.Ingress {
						for _, port := range rule.Ports {
							if containerPort(&p.spec.Spec.Containers[0], *port.Port) == 0 {
								t.Errorf("%s: NetworkPolicy %s names port %s, which %s lacks", r.name, np.Name, port.Port.String(), p.owner)
							}
						}
					}
				}
			}
			if len(selected) != 1 {
				t.Errorf("%s: NetworkPolicy %s selects %v, want one component", r.name, np.Name, selected)
				continue
			}
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
				t.Errorf("%s: NetworkPolicy %s policyTypes %v", r.name, np.Name, np.Spec.PolicyTypes)
			}
			byComponent[selected[0]] = np
		}
		for _, component := range []string{"metadata", "frontend"} {
			if byComponent[component] == nil {
				t.Fatalf("%s: no NetworkPolicy selects the %s pods", r.name, component)
			}
		}
		if _, bundled := pods["etcd"]; bundled && byComponent["etcd"] == nil {
			t.Errorf("%s: no NetworkPolicy selects the etcd pods", r.name)
		}
		for _, tc := range []struct {
			target, port string
			from         map[string]bool
		}{
			{"metadata", "grpc", map[string]bool{"frontend": true, "admin": true, "metadata": true, "etcd": false}},
			{"metadata", "raft", map[string]bool{"frontend": false, "admin": false, "metadata": true, "etcd": false}},
			{"etcd", "client", map[string]bool{"frontend": true, "admin": true, "metadata": true, "etcd": false}},
			{"etcd", "peer", map[string]bool{"frontend": false, "admin": false, "metadata": false, "etcd": true}},
			{"frontend", "imap", map[string]bool{"frontend": true, "admin": true, "metadata": true, "other": true}},
			{"frontend", "lmtp", map[string]bool{"other": true}},
		} {
			np := byComponent[tc.target]
			if np == nil {
				continue
			}
			for from, want := range tc.from {
				podLabels, ok := pods[from]
				if from == "other" {
					podLabels, ok = labels.Set{"app": "mail-client"}, true
				}
				if !ok {
					continue
				}
				if got := allowed(t, np, podLabels, tc.port); got != want {
					t.Errorf("%s: %s pods reach %s %s: %v, want %v", r.name, from, tc.target, tc.port, got, want)
				}
			}
			if allowed(t, np, labels.Set{"app": "mail-client"}, tc.port) && (tc.port == "grpc" || tc.port == "raft" || tc.target == "etcd") {
				t.Errorf("%s: any pod reaches %s %s", r.name, tc.target, tc.port)
			}
		}
	}
}

// TestServiceSelectors: every Service selects the pods of a rendered workload, on ports
// those pods have; the ServiceMonitor selects the metrics Services of both components; the
// HorizontalPodAutoscaler scales the frontend Deployment, which then leaves replicas to it.
func TestServiceSelectors(t *testing.T) {
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		for _, svc := range r.services {
			if len(svc.Spec.Selector) == 0 {
				t.Errorf("%s: Service %s has no selector", r.name, svc.Name)
				continue
			}
			var matched int
			for _, p := range r.podTemplates() {
				if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.spec.Labels)) {
					continue
				}
				matched++
				for _, port := range svc.Spec.Ports {
					if containerPort(&p.spec.Spec.Containers[0], port.TargetPort) == 0 {
						t.Errorf("%s: Service %s port %s targets %s, which %s lacks", r.name, svc.Name, port.Name, port.TargetPort.String(), p.owner)
					}
				}
			}
			if matched != 1 {
				t.Errorf("%s: Service %s selects %d pod templates, want 1", r.name, svc.Name, matched)
			}
		}
		for _, sts := range r.statefulSets {
			var found bool
			for _, svc := range r.services {
				found = found || (svc.Name == sts.Spec.ServiceName && svc.Spec.ClusterIP == corev1.ClusterIPNone && svc.Spec.PublishNotReadyAddresses)
			}
			if !found {
				t.Errorf("%s: StatefulSet %s: no headless Service %q publishing unready pods", r.name, sts.Name, sts.Spec.ServiceName)
			}
		}
		for _, sm := range r.monitors {
			sel := selectorOf(t, &sm.Spec.Selector)
			scraped := map[string]bool{}
			for _, svc := range r.services {
				if !sel.Matches(labels.Set(svc.Labels)) {
					continue
				}
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
						t.Errorf("%s: ServiceMonitor %s selects Service %s, which has no port %q", r.name, sm.Name, svc.Name, ep.Port)
					}
				}
				for _, p := range r.podTemplates() {
					if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.spec.Labels)) {
						scraped[p.spec.Labels["app.kubernetes.io/component"]] = true
					}
				}
			}
			if !scraped["metadata"] || !scraped["frontend"] || scraped["etcd"] {
				t.Errorf("%s: ServiceMonitor %s scrapes %v, want metadata and frontend", r.name, sm.Name, scraped)
			}
		}
		for _, hpa := range r.hpas {
			ref := hpa.Spec.ScaleTargetRef
			for _, d := range r.deployments {
				if ref.Kind == "Deployment" && ref.APIVersion == "apps/v1" && ref.Name == d.Name && d.Spec.Replicas != nil {
					t.Errorf("%s: Deployment %s sets replicas under a HorizontalPodAutoscaler", r.name, d.Name)
				}
			}
			if ref.Name != "mail-strata-frontend" {
				t.Errorf("%s: HorizontalPodAutoscaler scales %s %s", r.name, ref.Kind, ref.Name)
			}
		}
		for _, pdb := range r.pdbs {
			var matched int
			for _, p := range r.podTemplates() {
				if selectorOf(t, pdb.Spec.Selector).Matches(labels.Set(p.spec.Labels)) {
					matched++
				}
			}
			if matched != 1 {
				t.Errorf("%s: PodDisruptionBudget %s selects %d pod templates, want 1", r.name, pdb.Name, matched)
			}
		}
	}
}

// TestMetadataSearchIndex: the metadata nodes get the S3 flags, with which `strata
// metadata` keeps the text-search index by default; metadata.searchIndex false passes
// --search-index=false, and true passes nothing (the binary's default).
func TestMetadataSearchIndex(t *testing.T) {
	for _, f := range valuesFiles {
		for _, on := range []bool{true, false} {
			r := render(t, f, map[string]any{"metadata": map[string]any{"searchIndex": on}})
			args := r.component(t, "metadata").Spec.Containers[0].Args
			if _, ok := argValue(args, "s3-bucket"); !ok {
				t.Errorf("%s: the metadata nodes have no --s3-bucket, so no index: %q", r.name, args)
			}
			if off := slices.Contains(args, "--search-index=false"); off == on {
				t.Errorf("%s: searchIndex %v renders %q", r.name, on, args)
			}
		}
	}
}
