// Package istio holds Istio's rules about kubelet probes: the rules that decide whether the
// sidecar injector adds istio-proxy at all, the effective PeerAuthentication mode of a workload
// and port (Resolver), the annotation that turns the injector's probe rewrite on or off, the
// status port that rewritten probes target, the /app-health/... paths the pilot-agent serves, what would break if a probe were rewritten (hazards), and, on a live or
// injected pod, whether the rewrite happened (the kubelet probe points at the agent and
// ISTIO_KUBE_APP_PROBERS on istio-proxy holds the original). It is pure logic: it reads pod specs,
// labels and annotations and never talks to the API server. The behaviour mirrors istio/istio
// pkg/kube/inject (app_probe.go, inject.go, webhook.go), the default MutatingWebhookConfiguration of
// the istio-discovery chart, and pilot/cmd/pilot-agent/status/server.go.
package istio
