// Package probes describes the kubelet probes of a pod template or pod as
// Istio's sidecar injector sees them: what each probe checks, where Istio's
// rewrite points it (the pilot-agent status port and an /app-health/... path),
// what would break if the rewrite were switched on (hazards), and, on a live or
// injected pod, whether the rewrite actually happened (the kubelet probe points
// at the agent and ISTIO_KUBE_APP_PROBERS on istio-proxy holds the original).
// It is pure logic over corev1 types and never talks to the API server.
package probes
