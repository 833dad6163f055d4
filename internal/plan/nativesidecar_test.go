package plan_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// reports is issue 8, case 2: an init container db-proxy with restartPolicy Always and an HTTP
// startup probe on 9801, and the app container with an HTTP readiness probe.
func reports(opts ...workloadOption) plan.Workload {
	dbProxy := container("db-proxy")
	dbProxy.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	dbProxy.StartupProbe = &corev1.Probe{ProbeHandler: httpGet(9801, "/started")}
	withInit := func(w *plan.Workload) { w.Template().Spec.InitContainers = []corev1.Container{dbProxy} }
	return deployment("reports", append([]workloadOption{containers(container("reports", readiness(httpGet(8080, "/ready")))), withInit}, opts...)...)
}

func TestStartupProbeOfAnInitContainerBeforeAnOrdinarySidecar(t *testing.T) {
	nativeOff := templateAnnotation(istiomesh.NativeSidecarAnnotation, "false")
	tests := []struct {
		name     string
		workload plan.Workload
		strict   bool
		pod      func(w plan.Workload) *corev1.Pod // a live pod, when the test has one
		state    v1alpha1.WorkloadState
		reason   v1alpha1.StatusReason
	}{
		{name: "native sidecars off by annotation, STRICT", workload: reports(nativeOff), strict: true,
			state: v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonStartupProbeBeforeSidecar},
		{name: "native sidecars off, PERMISSIVE: Istio's own default rewrite deadlocks it all the same", workload: reports(nativeOff),
			state: v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonStartupProbeBeforeSidecar},
		{name: "only exactly \"false\" turns them off: \"False\" leaves them on", workload: reports(templateAnnotation(istiomesh.NativeSidecarAnnotation, "False")), strict: true,
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued},
		{name: "native sidecars on by annotation", workload: reports(templateAnnotation(istiomesh.NativeSidecarAnnotation, "true")), strict: true,
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued},
		{name: "no annotation: the newest Istio default (on) is assumed", workload: reports(), strict: true,
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued},
		{name: "no annotation, but the live pods show istio-proxy as an ordinary container", workload: reports(), strict: true,
			pod: func(w plan.Workload) *corev1.Pod {
				pod := podOf(w, "x1")
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: istiomesh.ProxyContainerName})
				return pod
			},
			state: v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonStartupProbeBeforeSidecar},
		{name: "the live pods show istio-proxy as a native sidecar, whatever the annotation says", workload: reports(nativeOff), strict: true,
			pod: func(w plan.Workload) *corev1.Pod {
				pod := podOf(w, "x1")
				pod.Spec.InitContainers = append([]corev1.Container{{Name: istiomesh.ProxyContainerName, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}, pod.Spec.InitContainers...)
				return pod
			},
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued},
		{name: "the user turned the rewrite off: nothing rewrites the probe", workload: reports(nativeOff, templateAnnotation(istiomesh.RewriteAnnotation, "false")), strict: true,
			state: v1alpha1.WorkloadOptedOut, reason: v1alpha1.StatusReasonRewriteDisabledByUser},
		{name: "someone else annotated it: reported, not followed blindly", workload: reports(nativeOff, annotated()), strict: true,
			state: v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonStartupProbeBeforeSidecar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := input(policy(), tt.workload)
			if tt.strict {
				istioOf(in).MTLS = resolver(strictNamespace())
			}
			if tt.pod != nil {
				in.Pods = []*corev1.Pod{tt.pod(tt.workload)}
			}

			d, out := decide(in)

			ws := workloadStatus(g, out.Status, deploymentRef("reports"))
			g.Expect(ws.State).To(Equal(tt.state), ws.Message)
			g.Expect(ws.Reason).To(Equal(tt.reason))
			if tt.reason == v1alpha1.StatusReasonStartupProbeBeforeSidecar {
				g.Expect(d.Annotate).To(BeEmpty(), "the operator never annotates such a template")
				g.Expect(ws.Message).To(ContainSubstring(`init container "db-proxy"`))
				g.Expect(ws.Message).To(ContainSubstring(`sidecar.istio.io/nativeSidecar: "true"`))
				g.Expect(ws.Probes).To(ContainElement(And(HaveField("Container", "db-proxy"), HaveField("Kind", v1alpha1.ProbeStartup),
					HaveField("State", v1alpha1.ProbeUnsupported), HaveField("Reason", v1alpha1.StatusReasonStartupProbeBeforeSidecar))))
				g.Expect(condition(out.Status, v1alpha1.ConditionStalled).Status).To(BeEquivalentTo("True"))
			}
		})
	}
}
