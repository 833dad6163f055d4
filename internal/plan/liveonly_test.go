package plan_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// policyAgent is the container a second mutating webhook (not Istio's) adds to every pod.
func policyAgent() corev1.Container {
	return container("policy-agent", readiness(httpGet(8282, "/ready")), liveness(httpGet(8282, "/live")))
}

// TestContainersThatExistOnlyOnLivePods is issue 8, case 1: namespace in the mesh under STRICT,
// a Deployment with one HTTP readiness probe, redirected; a webhook that runs after Istio's adds
// policy-agent with HTTP probes on 8282 to every pod.
func TestContainersThatExistOnlyOnLivePods(t *testing.T) {
	web := deployment("payments", containers(container("payments", readiness(httpGet(8080, "/ready")))), annotated(), managed())
	tests := []struct {
		name        string
		pod         func() *corev1.Pod
		state       v1alpha1.WorkloadState
		reason      v1alpha1.StatusReason
		agentStates []v1alpha1.ProbeState
		agentReason v1alpha1.StatusReason
		pending     int32
		ready       metav1.ConditionStatus
	}{
		{
			name: "added after Istio's injector ran: not rewritten",
			pod: func() *corev1.Pod {
				pod := livePod(t, web, "x1")
				pod.Spec.Containers = append(pod.Spec.Containers, policyAgent())
				return pod
			},
			state: v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonAddedAfterInjection,
			agentStates: []v1alpha1.ProbeState{v1alpha1.ProbeNotRewritten, v1alpha1.ProbeNotRewritten},
			agentReason: v1alpha1.StatusReasonAddedAfterInjection,
			pending:     2, ready: metav1.ConditionFalse,
		},
		{
			name: "Istio reinvoked after the other webhook (reinvocationPolicy IfNeeded): rewritten",
			pod: func() *corev1.Pod {
				pod := podOf(web, "x1")
				pod.Spec.Containers = append(pod.Spec.Containers, policyAgent())
				_, err := meshdouble.Inject(pod, injector)
				NewWithT(t).Expect(err).NotTo(HaveOccurred())
				return pod
			},
			state: v1alpha1.WorkloadRedirected, reason: v1alpha1.StatusReasonProbesRewritten,
			agentStates: []v1alpha1.ProbeState{v1alpha1.ProbeRewritten, v1alpha1.ProbeRewritten},
			agentReason: v1alpha1.StatusReasonVerifiedOnPods,
			pending:     0, ready: metav1.ConditionTrue,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := input(policy(), web)
			istioOf(in).MTLS = resolver(strictNamespace())
			in.Pods = []*corev1.Pod{tt.pod()}

			_, out := decide(in)

			ws := workloadStatus(g, out.Status, deploymentRef("payments"))
			g.Expect(ws.State).To(Equal(tt.state), ws.Message)
			g.Expect(ws.Reason).To(Equal(tt.reason))
			var agent []v1alpha1.ProbeStatus
			for _, p := range ws.Probes {
				switch p.Container {
				case "payments":
					g.Expect(p.State).To(Equal(v1alpha1.ProbeRewritten), "the template's own probe")
				case "policy-agent":
					agent = append(agent, p)
				}
			}
			g.Expect(agent).To(HaveLen(2))
			for i, p := range agent {
				g.Expect(p.State).To(Equal(tt.agentStates[i]), p.Message)
				g.Expect(p.Reason).To(Equal(tt.agentReason))
			}
			g.Expect(agent[0].Kind).To(Equal(v1alpha1.ProbeReadiness))
			g.Expect(agent[1].Kind).To(Equal(v1alpha1.ProbeLiveness))
			g.Expect(out.Status.Summary.PendingProbes).To(Equal(tt.pending))
			g.Expect(condition(out.Status, v1alpha1.ConditionReady).Status).To(Equal(tt.ready))
			if tt.state == v1alpha1.WorkloadUnsupported {
				g.Expect(ws.Message).To(ContainSubstring("policy-agent"))
				g.Expect(ws.Message).To(ContainSubstring("reinvocationPolicy to IfNeeded"))
				g.Expect(agent[0].Message).To(ContainSubstring("STRICT mTLS on port 8282"))
			}
		})
	}
}

// A live-only container whose probe needs no redirect (PERMISSIVE, HTTP) is listed, not flagged.
func TestLiveOnlyProbeThatNeedsNoRedirect(t *testing.T) {
	g := NewWithT(t)
	web := deployment("payments", containers(container("payments", readiness(tcpSocket(8080)))), annotated(), managed())
	pod := livePod(t, web, "x1")
	pod.Spec.Containers = append(pod.Spec.Containers, policyAgent())
	in := input(policy(), web)
	in.Pods = []*corev1.Pod{pod}

	_, out := decide(in)
	ws := workloadStatus(g, out.Status, deploymentRef("payments"))
	g.Expect(ws.State).To(Equal(v1alpha1.WorkloadRedirected), ws.Message)
	g.Expect(ws.Probes).To(ContainElement(And(HaveField("Container", "policy-agent"), HaveField("State", v1alpha1.ProbeNotNeeded),
		HaveField("Reason", v1alpha1.StatusReasonPortNotStrict))))
}

// One pod where Istio was reinvoked and one where it was not: the answer does not depend on the
// order the cache lists them in.
func TestLiveOnlyProbesDoNotDependOnPodOrder(t *testing.T) {
	web := deployment("payments", containers(container("payments", readiness(httpGet(8080, "/ready")))), annotated(), managed())
	reinvoked := podOf(web, "a")
	reinvoked.Spec.Containers = append(reinvoked.Spec.Containers, policyAgent())
	_, err := meshdouble.Inject(reinvoked, injector)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	notReinvoked := livePod(t, web, "b")
	notReinvoked.Spec.Containers = append(notReinvoked.Spec.Containers, policyAgent())
	for _, pods := range [][]*corev1.Pod{{reinvoked, notReinvoked}, {notReinvoked, reinvoked}} {
		g := NewWithT(t)
		in := input(policy(), web)
		istioOf(in).MTLS = resolver(strictNamespace())
		in.Pods = pods
		_, out := decide(in)
		ws := workloadStatus(g, out.Status, deploymentRef("payments"))
		g.Expect(ws.Reason).To(Equal(v1alpha1.StatusReasonAddedAfterInjection), "pods %s, %s", pods[0].Name, pods[1].Name)
		g.Expect(ws.Message).To(ContainSubstring("policy-agent"))
	}
}
