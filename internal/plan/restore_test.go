package plan_test

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

func TestDecideRestoreSelectsOnlyTheOperatorsAnnotations(t *testing.T) {
	g := NewWithT(t)
	base := now.Add(-time.Hour).Truncate(time.Second)
	p := policy(deleting(), maxConcurrent(5))
	keeper := policy(named("keeper", base.Add(time.Minute)), matchLabels("keep", "yes"))
	leaving := policy(named("leaving", base.Add(time.Minute)), matchLabels("leaving", "yes"), deleting())
	in := input(p,
		deployment("mine", annotated(), managed()),
		statefulSet("mine", annotated(), managed()),
		deployment("users", annotated()),                                      // the user's own "true"
		deployment("kept", annotated(), managed(), label("keep", "yes")),      // another live policy selects it
		deployment("orphan", annotated(), managed(), label("leaving", "yes")), // the other policy is being deleted too
		deployment("plain"), // never annotated
		deployment("optout", managed(), templateAnnotation(istiomesh.RewriteAnnotation, "false")),
	)
	in.Policies = []*v1alpha1.ProbeRedirectPolicy{p, keeper, leaving}

	d := plan.DecideRestore(in)

	g.Expect(d.Annotate).To(BeEmpty())
	g.Expect(d.Restore).To(Equal([]plan.Ref{deploymentRef("mine"), deploymentRef("orphan"), ref(v1alpha1.KindStatefulSet, "mine")}))
	out := plan.Complete(d, applied(d, 3))
	g.Expect(out.Events).To(ConsistOf(
		plan.Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRestored,
			Message: "Removed sidecar.istio.io/rewriteAppHTTPProbers from Deployment/mine; rollout started", Workload: ptr.To(ref(v1alpha1.KindDeployment, "mine"))},
		plan.Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRestored,
			Message: "Removed sidecar.istio.io/rewriteAppHTTPProbers from Deployment/orphan; rollout started", Workload: ptr.To(ref(v1alpha1.KindDeployment, "orphan"))},
		plan.Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRestored,
			Message: "Removed sidecar.istio.io/rewriteAppHTTPProbers from StatefulSet/mine; rollout started", Workload: ptr.To(ref(v1alpha1.KindStatefulSet, "mine"))},
	))
	g.Expect(refsOf(out.Status.Workloads)).To(ConsistOf(deploymentRef("mine"), deploymentRef("orphan"), ref(v1alpha1.KindStatefulSet, "mine")))
	g.Expect(out.Status.Workloads).To(HaveEach(And(HaveField("State", v1alpha1.WorkloadRolling), HaveField("Reason", v1alpha1.StatusReasonRestoring))))
	g.Expect(out.Status.Rollouts).To(ConsistOf(
		v1alpha1.RolloutRecord{Kind: v1alpha1.KindDeployment, Name: "mine", Generation: 3, StartedAt: ptr.To(metav1.NewTime(now.Truncate(time.Second)))},
		v1alpha1.RolloutRecord{Kind: v1alpha1.KindDeployment, Name: "orphan", Generation: 3, StartedAt: ptr.To(metav1.NewTime(now.Truncate(time.Second)))},
		v1alpha1.RolloutRecord{Kind: v1alpha1.KindStatefulSet, Name: "mine", Generation: 3, StartedAt: ptr.To(metav1.NewTime(now.Truncate(time.Second)))},
	))
	g.Expect(out.RestoreDone).To(BeFalse())
	g.Expect(out.RequeueAfter).To(Equal(10 * time.Minute))
	expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonDeleting, true, false)
}

func TestDecideRestorePacing(t *testing.T) {
	// After the operator removed its annotation, the workload shows generation 3 and no annotation.
	restored := func(name string, opts ...workloadOption) plan.Workload {
		return deployment(name, append([]workloadOption{generation(3)}, opts...)...)
	}
	tests := []struct {
		name        string
		policy      []policyOption
		workloads   []plan.Workload
		restore     []plan.Ref
		states      map[plan.Ref]string // state/reason
		events      []plan.Event
		rollouts    []v1alpha1.RolloutRecord
		restoreDone bool
		reconciling bool
		requeue     time.Duration
	}{
		{
			name:      "maxConcurrent 1 restores one at a time",
			workloads: []plan.Workload{deployment("b", annotated(), managed()), deployment("a", annotated(), managed())},
			restore:   []plan.Ref{deploymentRef("a")},
			states: map[plan.Ref]string{deploymentRef("a"): "Queued/WaitingToRestore",
				deploymentRef("b"): "Queued/WaitingToRestore"},
			reconciling: true,
		},
		{
			name:      "an in-flight restore takes the slot",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 3, time.Minute))},
			workloads: []plan.Workload{restored("a", rolling()), deployment("b", annotated(), managed())},
			restore:   nil,
			states: map[plan.Ref]string{deploymentRef("a"): "Rolling/Restoring",
				deploymentRef("b"): "Queued/WaitingToRestore"},
			rollouts:    []v1alpha1.RolloutRecord{record(v1alpha1.KindDeployment, "a", 3, time.Minute)},
			reconciling: true,
			requeue:     9*time.Minute - 500*time.Millisecond,
		},
		{
			name:      "a restore the workload controller has not observed yet is rolling",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 3, time.Second))},
			workloads: []plan.Workload{deployment("a", generation(3), observedGeneration(2))},
			states:    map[plan.Ref]string{deploymentRef("a"): "Rolling/Restoring"},
			rollouts:  []v1alpha1.RolloutRecord{record(v1alpha1.KindDeployment, "a", 3, time.Second)},
			// The restore started at 11:59:59; its deadline is 12:09:59 and now is 12:00:00.5.
			reconciling: true,
			requeue:     10*time.Minute - 1500*time.Millisecond,
		},
		{
			name:      "a completed restore is dropped and the next one starts",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 3, time.Minute))},
			workloads: []plan.Workload{restored("a"), deployment("b", annotated(), managed())},
			restore:   []plan.Ref{deploymentRef("b")},
			states:    map[plan.Ref]string{deploymentRef("b"): "Queued/WaitingToRestore"},
			events: []plan.Event{{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
				Message: "Rollout of Deployment/a completed after restore", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))}},
			reconciling: true,
		},
		{
			name:      "the last restore completed: done",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 3, time.Minute))},
			workloads: []plan.Workload{restored("a"), deployment("users", annotated())},
			events: []plan.Event{{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
				Message: "Rollout of Deployment/a completed after restore", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))}},
			restoreDone: true,
		},
		{
			name:      "an expired restore is given up with a warning",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 3, 11*time.Minute))},
			workloads: []plan.Workload{restored("a", rolling())},
			events: []plan.Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed,
				Message: "Rollout of Deployment/a did not finish within 600s after restore; not waiting longer", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))}},
			restoreDone: true,
		},
		{
			name:        "nothing to restore: done at once",
			workloads:   []plan.Workload{deployment("users", annotated()), deployment("plain")},
			restoreDone: true,
		},
		{
			name:        "an invalid selector selects nothing: done",
			policy:      []policyOption{selector(nil)},
			workloads:   []plan.Workload{deployment("a", annotated(), managed())},
			restoreDone: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := input(policy(append([]policyOption{deleting()}, tt.policy...)...), tt.workloads...)

			d := plan.DecideRestore(in)
			out := plan.Complete(d, nil)

			g.Expect(d.Restore).To(Equal(tt.restore))
			got := map[plan.Ref]string{}
			for _, w := range out.Status.Workloads {
				got[ref(w.Kind, w.Name)] = string(w.State) + "/" + string(w.Reason)
			}
			if tt.states == nil {
				tt.states = map[plan.Ref]string{}
			}
			g.Expect(got).To(Equal(tt.states))
			g.Expect(out.Events).To(Equal(tt.events))
			g.Expect(out.Status.Rollouts).To(Equal(tt.rollouts))
			g.Expect(out.RestoreDone).To(Equal(tt.restoreDone))
			g.Expect(out.RequeueAfter).To(Equal(tt.requeue))
			expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonDeleting, tt.reconciling, false)
			if tt.restoreDone {
				g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal("All workloads restored"))
			}
		})
	}
}

func TestRestoreFailure(t *testing.T) {
	g := NewWithT(t)
	d := plan.DecideRestore(input(policy(deleting()), deployment("a", annotated(), managed())))
	g.Expect(d.Restore).To(Equal([]plan.Ref{deploymentRef("a")}))

	out := plan.Complete(d, map[plan.Ref]plan.ApplyResult{deploymentRef("a"): {Err: errors.New("the server is currently unable to handle the request")}})

	g.Expect(out.Events).To(Equal([]plan.Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRestoreFailed,
		Message: "Failed to restore Deployment/a: the server is currently unable to handle the request", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))}}))
	g.Expect(workloadStatus(g, out.Status, deploymentRef("a"))).To(And(HaveField("State", v1alpha1.WorkloadQueued),
		HaveField("Reason", v1alpha1.StatusReasonRestoreFailed), HaveField("Message", "the server is currently unable to handle the request")))
	g.Expect(out.Status.Rollouts).To(BeEmpty())
	g.Expect(out.RestoreDone).To(BeFalse())
	expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonRestoreFailed, true, false)
}
