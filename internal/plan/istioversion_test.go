package plan_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// TestInjectLabelFollowsTheRunningIstio is issue 8, cases 4 and 6: namespace billing in the mesh
// under STRICT, a template labelled sidecar.istio.io/inject: "False".
func TestInjectLabelFollowsTheRunningIstio(t *testing.T) {
	billing := func() []workloadOption {
		return []workloadOption{containers(container("billing", readiness(httpGet(8080, "/ready")))), label("sidecar.istio.io/inject", "False")}
	}
	tests := []struct {
		name    string
		istio   istiomesh.IstioVersion
		pod     func(t *testing.T) *corev1.Pod
		state   v1alpha1.WorkloadState
		reason  v1alpha1.StatusReason
		version string
	}{
		{name: "Istio 1.27+: only exactly \"false\" counts, so the pod gets a sidecar", istio: istio("1.27.2"),
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, version: "1.27.2"},
		{name: "Istio before 1.27: \"False\" turned injection off", istio: istio("1.26.4"),
			state: v1alpha1.WorkloadNotInMesh, reason: v1alpha1.StatusReasonPodInjectionDisabled, version: "1.26.4"},
		{name: "unknown version, no pods: the newest Istio", istio: istiomesh.IstioVersion{},
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, version: "unknown"},
		{name: "unknown version, live pods without istio-proxy: they decide", istio: istiomesh.IstioVersion{},
			pod:   func(*testing.T) *corev1.Pod { return podOf(deployment("billing", billing()...), "x1") },
			state: v1alpha1.WorkloadNotInMesh, reason: v1alpha1.StatusReasonNoSidecarOnLivePods, version: "unknown"},
		{name: "the workload's own pods tell the version (istio-proxy image)", istio: istio("1.26.4"),
			pod:   func(t *testing.T) *corev1.Pod { return livePod(t, deployment("billing", billing()...), "x1") },
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, version: "1.26.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := deployment("billing", billing()...)
			in := input(policy(), w)
			istioOf(in).MTLS = resolver(strictNamespace())
			istioOf(in).Istio = tt.istio
			if tt.pod != nil {
				in.Pods = []*corev1.Pod{tt.pod(t)}
			}

			_, out := decide(in)

			ws := workloadStatus(g, out.Status, deploymentRef("billing"))
			g.Expect(ws.State).To(Equal(tt.state), ws.Message)
			g.Expect(ws.Reason).To(Equal(tt.reason))
			g.Expect(out.Status.IstioVersion).To(Equal(tt.version), "the namespace's version, in the status")
		})
	}
}

// TestTCPProbeOnIstioThatPredatesItsRewrite: Istio before 1.12 leaves TCP probes alone; the status
// says so instead of a bare ProbeNotRewritten.
func TestTCPProbeOnIstioThatPredatesItsRewrite(t *testing.T) {
	g := NewWithT(t)
	w := deployment("old", containers(container("old", readiness(tcpSocket(8080)))), annotated(), managed())
	pod := podOf(w, "x1")
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: istiomesh.ProxyContainerName, Image: "docker.io/istio/proxyv2:1.11.8"})
	in := input(policy(), w)
	in.Pods = []*corev1.Pod{pod}

	_, out := decide(in)

	ws := workloadStatus(g, out.Status, deploymentRef("old"))
	g.Expect(ws.Probes).To(ConsistOf(And(HaveField("State", v1alpha1.ProbeNotRewritten), HaveField("Reason", v1alpha1.StatusReasonRewriteNotInThisIstio),
		HaveField("Message", ContainSubstring("Istio 1.11.8 (istio-proxy image) does not rewrite TCP probes; that came in Istio 1.12")))))
}
