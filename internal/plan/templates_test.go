package plan_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// kubeInjected is what `kubectl apply -f <(istioctl kube-inject -f app.yaml)` stores: a template
// that already holds istio-proxy, the probe on the status port and ISTIO_KUBE_APP_PROBERS. The
// injection is done by the injector double (proven equal to Istio's golden output), with the
// rewrite on as in stock Istio.
func kubeInjected(t *testing.T) plan.Workload {
	t.Helper()
	w := deployment("shop", containers(container("web", httpPort(), readiness(httpGet(8080, "/ready")))))
	pod := &corev1.Pod{ObjectMeta: *w.Template().ObjectMeta.DeepCopy(), Spec: *w.Template().Spec.DeepCopy()}
	rewritten, err := meshdouble.Inject(pod, meshdouble.Config{StatusPort: istiomesh.DefaultStatusPort, RewriteAppHTTPProbe: true})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(rewritten).To(BeTrue())
	w.Template().ObjectMeta, w.Template().Spec = pod.ObjectMeta, pod.Spec
	return w
}

// TestTemplatesInjectedBeforeTheyWereApplied is issue 8, case 7: such a template is judged by the
// probes its env keeps, reported as already redirected, and 15020 is never taken for the app's port.
func TestTemplatesInjectedBeforeTheyWereApplied(t *testing.T) {
	g := NewWithT(t)
	w := kubeInjected(t)
	g.Expect(w.Template().Spec.Containers[0].ReadinessProbe.HTTPGet.Port.IntValue()).To(Equal(15020), "the template's probe was rewritten")
	in := input(policy(), w)
	istioOf(in).MTLS = resolver(strictNamespace())
	in.Pods = []*corev1.Pod{podOf(w, "x1"), podOf(w, "x2")}

	d, out := decide(in)

	g.Expect(d.Annotate).To(BeEmpty(), "it needs no annotation")
	ws := workloadStatus(g, out.Status, deploymentRef("shop"))
	g.Expect(ws.State).To(Equal(v1alpha1.WorkloadRedirected), ws.Message)
	g.Expect(ws.Reason).To(Equal(v1alpha1.StatusReasonRewrittenInTemplate))
	g.Expect(ws.Message).To(ContainSubstring("injected before it was applied"))
	g.Expect(ws.Probes).To(ConsistOf(And(
		HaveField("Container", "web"), HaveField("Original", "HTTP :8080/ready"),
		HaveField("Rewritten", "HTTP :15020/app-health/web/readyz"), HaveField("State", v1alpha1.ProbeRewritten),
		HaveField("MTLSMode", v1alpha1.MTLSStrict))))
	g.Expect(out.Status.Summary.RewrittenProbes).To(BeEquivalentTo(1))
	expectReady(g, out.Status, "True", v1alpha1.ReasonRedirected, false, false)
}

func TestInjectionTemplates(t *testing.T) {
	templates := func(value string) workloadOption {
		return templateAnnotation(istiomesh.InjectionTemplatesAnnotation, value)
	}
	tests := []struct {
		name   string
		value  string
		state  v1alpha1.WorkloadState
		reason v1alpha1.StatusReason
	}{
		{"proxyless gRPC with an agent", "grpc-agent", v1alpha1.WorkloadNotInMesh, v1alpha1.StatusReasonProxylessTemplate},
		{"proxyless gRPC without one", "grpc-simple", v1alpha1.WorkloadNotInMesh, v1alpha1.StatusReasonProxylessTemplate},
		{"Istio's sidecar with SPIRE", "sidecar,spire", v1alpha1.WorkloadQueued, v1alpha1.StatusReasonQueued},
		{"a template that is not Istio's", "sidecar, acme-custom", v1alpha1.WorkloadUnsupported, v1alpha1.StatusReasonUnknownInjectionTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := deployment("grpc", containers(container("grpc", readiness(httpGet(8080, "/ready")))), templates(tt.value))
			in := input(policy(), w)
			istioOf(in).MTLS = resolver(strictNamespace())

			d, out := decide(in)

			ws := workloadStatus(g, out.Status, deploymentRef("grpc"))
			g.Expect(ws.State).To(Equal(tt.state), ws.Message)
			g.Expect(ws.Reason).To(Equal(tt.reason))
			g.Expect(len(d.Annotate) > 0).To(Equal(tt.state == v1alpha1.WorkloadQueued))
		})
	}
}

// A kube-injected template whose env has no entry for its probe: the agent would answer 400.
func TestKubeInjectedTemplateWithoutItsEntry(t *testing.T) {
	g := NewWithT(t)
	w := kubeInjected(t)
	for i, c := range w.Template().Spec.Containers {
		if c.Name == istiomesh.ProxyContainerName {
			w.Template().Spec.Containers[i].Env = nil
		}
	}
	in := input(policy(), w)
	istioOf(in).MTLS = resolver(strictNamespace())

	d, out := decide(in)

	g.Expect(d.Annotate).To(BeEmpty())
	ws := workloadStatus(g, out.Status, deploymentRef("shop"))
	g.Expect(ws.State).To(Equal(v1alpha1.WorkloadUnsupported), ws.Message)
	g.Expect(ws.Reason).To(Equal(v1alpha1.StatusReasonMissingKubeAppProbersEntry))
}
