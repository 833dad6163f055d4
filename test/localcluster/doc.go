// Package localcluster runs a real Kubernetes control plane on this machine,
// without containers: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built from Go modules (`make control-plane-bins` puts them in
// bin/), plus kwok playing the kubelets of a few fake nodes. Optionally it
// runs Istio's own sidecar injector (bin/istio-injector, built from the
// istio.io/istio module by the test/istio module; `make istio-injector`), or
// with InjectorOptions.Double the in-process mesh double, with Istio's CRDs
// installed.
//
// Everything listens on 127.0.0.1 on ports picked free at Start, so several
// clusters can run side by side (tests start two in parallel). Each cluster
// keeps its state in one folder (Options.Dir, normally
// .local/clusters/<name>, ignored by git):
//
//	kubeconfig          admin kubeconfig (static token in system:masters)
//	cluster.json        name, ports and pids of the running cluster
//	logs/<name>.log     one log per process (etcd, kube-apiserver, ...,
//	                    kwok, istio-injector, or injector-double for the
//	                    in-process double)
//	pids/<name>.pid     one pid file per child process
//	pki/                CA, API server and service-account keys, token file
//	etcd/               etcd data
//	kwok/kwok.yaml      the kwok Stage objects in use
//
// kwok runs the stock node stages and pod-complete/pod-delete stages from
// the sigs.k8s.io/kwok module, and this repository's hack/kwok/pod-stages.yaml
// instead of the stock pod-ready stage: pods become Ready, or stay not Ready
// with repeated "Warning Unhealthy" events, according to the
// meshdouble.proberedirect.io/probe-verdict annotation that the injector
// sets at admission (test/meshdouble.VerdictWebhook behind Istio's webhook,
// with the mTLS modes resolved by Istio's code).
//
// Every child runs in its own process group and dies with the process that
// started it (Pdeathsig). Stop sends SIGTERM to each group, SIGKILL after a
// grace period, and waits, so no process is left behind.
//
// cmd/localcluster wraps this package for `make cluster-up` and
// `make cluster-down`.
package localcluster
