// Package helm holds the render tests of the Strata Helm chart in strata/. It is its own Go
// module so that the Helm SDK and the k8s.io module tree it brings stay out of the strata
// binary's dependencies.
//
// The tests render the chart with the Helm v4 SDK as `helm template` does (schema
// validation included) for every values file in testdata/, decode every rendered object
// strictly into its k8s.io/api type (an unknown or duplicate field is an error), and check
// the chart's invariants: the metadata PodDisruptionBudget keeps a Raft quorum, probes reach
// /healthz and /readyz on the --metrics-listen port, the frontends' grace period outlasts
// preStop plus --drain-timeout, every container runs non-root with a read-only root and no
// capabilities, NetworkPolicies select the pods they name, Service selectors match pod
// templates, every Secret is rendered or documented as the user's, every flag passed exists
// in the --help of the binary built from this repository (strata, and deploy/etcd's etcd),
// and the chart stays in step with deploy/compose.yaml.
package helm
