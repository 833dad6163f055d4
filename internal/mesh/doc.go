// Package mesh holds the Istio conventions the operator relies on: the
// annotation that turns the sidecar injector's probe rewrite on or off, the
// status port that rewritten probes target, the /app-health/... paths the
// pilot-agent serves, and the rules that decide whether the injector adds a
// sidecar at all. It is pure logic: it reads label and annotation maps and
// never talks to the API server. The behaviour mirrors istio/istio
// pkg/kube/inject (app_probe.go, inject.go, webhook.go), the default
// MutatingWebhookConfiguration of the istio-discovery chart, and
// pilot/cmd/pilot-agent/status/server.go.
package mesh
