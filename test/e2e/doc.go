// Package e2e runs the documented mesh scenarios end to end: a local control plane (real etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, kwok nodes, and Istio's own sidecar
// injector, bin/istio-injector), the operator running as its own process with the installer's RBAC,
// and real rollouts.
// The tests carry the build tag e2e; run them with `make test-e2e`.
package e2e
