package plan_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

var tcpOnly = containers(container("app", readiness(tcpSocket(80))))

func TestHostNetworkPodsAreNotInTheMesh(t *testing.T) {
	g := NewWithT(t)
	w := deployment("host", tcpOnly, func(w *plan.Workload) { asDeployment(w).Spec.Template.Spec.HostNetwork = true })
	d, out := decide(input(policy(), w))
	g.Expect(d.Annotate).To(BeEmpty())
	status := workloadStatus(g, out.Status, deploymentRef("host"))
	g.Expect(status.State).To(Equal(v1alpha1.WorkloadNotInMesh))
	g.Expect(status.Reason).To(Equal(v1alpha1.StatusReasonHostNetwork))
}

func TestAStaleCachedCopyOfThePolicyCausesNoConflict(t *testing.T) {
	g := NewWithT(t)
	base := now.Add(-time.Hour).Truncate(time.Second)
	fresh := policy(named("first", base), matchLabels())
	stale := fresh.DeepCopy()
	stale.Spec.Selector = &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "none"}}
	newer := policy(named("second", base.Add(time.Minute)), matchLabels())
	in := input(fresh, deployment("a", tcpOnly))
	in.Policies = []*v1alpha1.ProbeRedirectPolicy{stale, newer}

	d, out := decide(in)
	g.Expect(d.Annotate).To(Equal([]plan.Ref{deploymentRef("a")}))
	g.Expect(workloadStatus(g, out.Status, deploymentRef("a")).State).NotTo(Equal(v1alpha1.WorkloadConflict))
}

func TestRestoreWaitsForAStaleCache(t *testing.T) {
	g := NewWithT(t)
	// The operator removed its annotation at generation 3; the cache still shows generation 2.
	p := policy(deleting(), rollouts(record(v1alpha1.KindDeployment, "a", 3, time.Minute)))
	d := plan.DecideRestore(input(p, deployment("a", tcpOnly, annotated(), managed(), generation(2))))
	g.Expect(d.Restore).To(BeEmpty())
	out := plan.Complete(d, nil)
	g.Expect(out.Events).To(BeEmpty())
	g.Expect(out.RestoreDone).To(BeFalse())
	g.Expect(out.Status.Rollouts).To(HaveLen(1))
	g.Expect(out.Status.Rollouts[0].StartedAt.Time).To(Equal(now.Add(-time.Minute).Truncate(time.Second)))
}

func TestASuspendedPolicyRestoresNothingOnDeletion(t *testing.T) {
	g := NewWithT(t)
	d := plan.DecideRestore(input(policy(deleting(), suspended()), deployment("a", tcpOnly, annotated(), managed())))
	g.Expect(d.Restore).To(BeEmpty())
	out := plan.Complete(d, nil)
	g.Expect(out.RestoreDone).To(BeTrue())
	g.Expect(out.Events).To(ConsistOf(HaveField("Reason", v1alpha1.EventRestoreSkipped)))
}

func TestHazardsAreReportedOnTemplatesSomeoneElseAnnotated(t *testing.T) {
	g := NewWithT(t)
	w := deployment("a", containers(container("app", readiness(httpGetHost("10.0.0.1", 80, "/")))), annotated())
	_, out := decide(input(policy(), w))
	status := workloadStatus(g, out.Status, deploymentRef("a"))
	g.Expect(status.State).To(Equal(v1alpha1.WorkloadUnsupported))
	g.Expect(status.Reason).To(Equal(v1alpha1.StatusReasonHostSet))
	g.Expect(status.Probes[0].State).To(Equal(v1alpha1.ProbeUnsupported))
}

func TestAnInvalidAnnotationMattersOnlyWhenSomethingNeedsRedirecting(t *testing.T) {
	g := NewWithT(t)
	w := deployment("a", containers(container("app", readiness(execProbe("true")))), templateAnnotation(istiomesh.RewriteAnnotation, "yes"))
	_, out := decide(input(policy(), w))
	g.Expect(workloadStatus(g, out.Status, deploymentRef("a")).State).To(Equal(v1alpha1.WorkloadNotNeeded))
	g.Expect(condition(out.Status, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionFalse))
}

func TestAnInvalidSelectorKeepsRolloutDeadlines(t *testing.T) {
	g := NewWithT(t)
	records := []v1alpha1.RolloutRecord{record(v1alpha1.KindDeployment, "a", 2, time.Minute)}
	p := policy(selector(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "not valid!"}}), rollouts(records...))
	_, out := decide(input(p, deployment("a", tcpOnly)))
	g.Expect(condition(out.Status, v1alpha1.ConditionReady).Reason).To(Equal(string(v1alpha1.ReasonInvalidSelector)))
	g.Expect(out.Status.Rollouts).To(Equal(records))
}

func TestAFailedRolloutRaisesOneWarning(t *testing.T) {
	g := NewWithT(t)
	p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, 20*time.Minute)))
	_, out := decide(input(p, deployment("a", tcpOnly, annotated(), managed(), generation(2), rolling())))
	g.Expect(out.Events).To(ConsistOf(HaveField("Reason", v1alpha1.EventRolloutFailed)))
}

func TestSuspendDoesNotHideARolloutInProgress(t *testing.T) {
	g := NewWithT(t)
	p := policy(suspended(), rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute)))
	_, out := decide(input(p, deployment("a", tcpOnly, annotated(), managed(), generation(2), rolling()), deployment("b", tcpOnly)))
	g.Expect(condition(out.Status, v1alpha1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(condition(out.Status, v1alpha1.ConditionReady).Reason).To(Equal(string(v1alpha1.ReasonRolloutInProgress)))
	g.Expect(workloadStatus(g, out.Status, deploymentRef("b")).State).To(Equal(v1alpha1.WorkloadSuspended))
}

func TestUnhealthyEventsOfAnEarlierPodWithTheSameNameAreIgnored(t *testing.T) {
	g := NewWithT(t)
	w := statefulSet("db", tcpOnly)
	pod := podOf(w, "0", func(p *corev1.Pod) { p.UID = types.UID("new") })
	old := unhealthyEvent(pod.Name, "Readiness probe failed: connection refused", 5, now.Add(-time.Minute))
	old.InvolvedObject.UID = types.UID("old")
	current := unhealthyEvent(pod.Name, "Readiness probe failed: HTTP probe failed with statuscode: 500", 2, now.Add(-30*time.Second))
	current.InvolvedObject.UID = types.UID("new")
	in := input(policy(), w)
	in.Pods, in.Events = []*corev1.Pod{pod}, []corev1.Event{old, current}

	_, out := decide(in)
	g.Expect(out.Status.UnhealthyPods).To(HaveLen(1))
	g.Expect(out.Status.UnhealthyPods[0].Count).To(Equal(int32(2)))
}

func TestANilResolverMeansNoPeerAuthentication(t *testing.T) {
	g := NewWithT(t)
	in := input(policy(), deployment("a", tcpOnly))
	istioOf(in).MTLS = nil
	d, out := decide(in)
	g.Expect(d.Annotate).To(HaveLen(1))
	g.Expect(out.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
}
