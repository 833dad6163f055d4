package plan

// Table tests of the parts Complete is made of, each on its own.

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

var partsNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func verdict(name string, state v1alpha1.WorkloadState, opts ...func(*Verdict)) Verdict {
	v := Verdict{Ref: Ref{Kind: v1alpha1.KindDeployment, Name: name},
		Status: v1alpha1.WorkloadStatus{Kind: v1alpha1.KindDeployment, Name: name, State: state,
			Probes: []v1alpha1.ProbeStatus{{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerTCP,
				State: v1alpha1.ProbePendingRollout, Reason: v1alpha1.StatusReasonQueued}}}}
	for _, o := range opts {
		o(&v)
	}
	return v
}

func admitted(v *Verdict) { v.Admitted = true }

func TestApplyResults(t *testing.T) {
	deadline := 10 * time.Minute
	tests := []struct {
		name      string
		restoring bool
		verdicts  []Verdict
		results   map[Ref]ApplyResult
		check     func(g Gomega, out applied)
	}{
		{
			name:     "an annotated workload starts rolling with a record and a deadline",
			verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted)},
			results:  map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Generation: 3}},
			check: func(g Gomega, out applied) {
				v := out.verdicts[0]
				g.Expect(v.Status.State).To(Equal(v1alpha1.WorkloadRolling))
				g.Expect(v.Status.Reason).To(Equal(v1alpha1.StatusReasonRolloutStarted))
				g.Expect(v.Status.Probes[0].Reason).To(Equal(v1alpha1.StatusReasonRolloutStarted))
				g.Expect(v.Annotated && v.InFlight).To(BeTrue())
				g.Expect(v.Record).To(Equal(&v1alpha1.RolloutRecord{Kind: v1alpha1.KindDeployment, Name: "a", Generation: 3, StartedAt: ptr.To(metav1.NewTime(partsNow))}))
				g.Expect(out.recheckAt).To(Equal([]time.Time{partsNow.Add(deadline)}))
				g.Expect(out.events).To(HaveLen(2))
				g.Expect(out.events[0].Reason).To(Equal(v1alpha1.EventAnnotated))
				g.Expect(out.events[1].Reason).To(Equal(v1alpha1.EventRolloutStarted))
				g.Expect(out.failures).To(BeZero())
			},
		},
		{
			name:     "a generation of 0 (an old API server) still makes a valid record",
			verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted)},
			results:  map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {}},
			check: func(g Gomega, out applied) {
				g.Expect(out.verdicts[0].Record.Generation).To(BeEquivalentTo(1))
			},
		},
		{
			name:     "a refused annotation stays queued with its reason",
			verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted)},
			results:  map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Err: errors.New("conflict")}},
			check: func(g Gomega, out applied) {
				g.Expect(out.verdicts[0].Status.State).To(Equal(v1alpha1.WorkloadQueued))
				g.Expect(out.verdicts[0].Status.Reason).To(Equal(v1alpha1.StatusReasonAnnotateFailed))
				g.Expect(out.verdicts[0].Record).To(BeNil())
				g.Expect(out.failures).To(Equal(1))
				g.Expect(out.events).To(Equal([]Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventAnnotateFailed, Message: "Failed to annotate Deployment/a: conflict", Workload: &Ref{v1alpha1.KindDeployment, "a"}}}))
			},
		},
		{
			name:      "a refused restore has its own reasons",
			restoring: true,
			verdicts:  []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted)},
			results:   map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Err: errors.New("conflict")}},
			check: func(g Gomega, out applied) {
				g.Expect(out.verdicts[0].Status.Reason).To(Equal(v1alpha1.StatusReasonRestoreFailed))
				g.Expect(out.events[0].Reason).To(Equal(v1alpha1.EventRestoreFailed))
			},
		},
		{
			name:      "a restored workload rolls back",
			restoring: true,
			verdicts:  []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted)},
			results:   map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Generation: 4}},
			check: func(g Gomega, out applied) {
				g.Expect(out.verdicts[0].Status.Reason).To(Equal(v1alpha1.StatusReasonRestoring))
				g.Expect(out.verdicts[0].Annotated).To(BeFalse())
				g.Expect(out.events).To(ConsistOf(HaveField("Reason", v1alpha1.EventRestored)))
			},
		},
		{
			name:     "not admitted, or admitted but not attempted: unchanged",
			verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued), verdict("b", v1alpha1.WorkloadQueued, admitted)},
			results:  map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Generation: 2}},
			check: func(g Gomega, out applied) {
				g.Expect(out.verdicts).To(Equal([]Verdict{verdict("a", v1alpha1.WorkloadQueued), verdict("b", v1alpha1.WorkloadQueued, admitted)}))
				g.Expect(out.events).To(BeEmpty())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := append([]Verdict(nil), tt.verdicts...)
			fresh := make([]Verdict, len(tt.verdicts))
			for i := range tt.verdicts {
				fresh[i] = tt.verdicts[i]
				fresh[i].Status = *tt.verdicts[i].Status.DeepCopy()
			}
			tt.check(g, applyResults(tt.verdicts, tt.results, tt.restoring, partsNow, deadline))
			g.Expect(tt.verdicts).To(Equal(fresh), "the input verdicts are not changed")
			g.Expect(tt.verdicts).To(Equal(before))
		})
	}
}

func TestRolloutFailures(t *testing.T) {
	failed := verdict("a", v1alpha1.WorkloadRolloutFailed, func(v *Verdict) { v.Status.Message = "too slow" })
	tests := []struct {
		name     string
		previous []v1alpha1.WorkloadStatus
		want     []Event
	}{
		{"newly failed", nil, []Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed, Message: "Rollout of Deployment/a failed: too slow", Workload: &Ref{v1alpha1.KindDeployment, "a"}}}},
		{"was rolling", []v1alpha1.WorkloadStatus{{Kind: v1alpha1.KindDeployment, Name: "a", State: v1alpha1.WorkloadRolling}},
			[]Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed, Message: "Rollout of Deployment/a failed: too slow", Workload: &Ref{v1alpha1.KindDeployment, "a"}}}},
		{"already reported", []v1alpha1.WorkloadStatus{{Kind: v1alpha1.KindDeployment, Name: "a", State: v1alpha1.WorkloadRolloutFailed}}, nil},
		{"a StatefulSet of the same name failed before", []v1alpha1.WorkloadStatus{{Kind: v1alpha1.KindStatefulSet, Name: "a", State: v1alpha1.WorkloadRolloutFailed}},
			[]Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed, Message: "Rollout of Deployment/a failed: too slow", Workload: &Ref{v1alpha1.KindDeployment, "a"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(rolloutFailures(tt.previous, []Verdict{failed})).To(Equal(tt.want))
		})
	}
}

func TestStalledEvent(t *testing.T) {
	ready := func(reason v1alpha1.ConditionReason) []metav1.Condition {
		return []metav1.Condition{{Type: string(v1alpha1.ConditionReady), Status: metav1.ConditionFalse, Reason: string(reason)}}
	}
	tests := []struct {
		name     string
		previous []metav1.Condition
		r        readiness
		want     []v1alpha1.EventReason
	}{
		{"first reconcile, conflict", nil, readiness{stalled: true, reason: v1alpha1.ReasonConflict}, []v1alpha1.EventReason{v1alpha1.EventConflict}},
		{"new reason", ready(v1alpha1.ReasonConflict), readiness{stalled: true, reason: v1alpha1.ReasonInvalidSelector}, []v1alpha1.EventReason{v1alpha1.EventInvalidSelector}},
		{"unsupported probes", ready(v1alpha1.ReasonRedirected), readiness{stalled: true, reason: v1alpha1.ReasonUnsupportedProbes}, []v1alpha1.EventReason{v1alpha1.EventUnsupportedProbes}},
		{"same reason as before", ready(v1alpha1.ReasonConflict), readiness{stalled: true, reason: v1alpha1.ReasonConflict}, nil},
		{"rollout failures are reported per workload", nil, readiness{stalled: true, reason: v1alpha1.ReasonRolloutFailed}, nil},
		{"not stalled", nil, readiness{ready: true, reason: v1alpha1.ReasonRedirected}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []v1alpha1.EventReason
			for _, e := range stalledEvent(tt.previous, tt.r) {
				got = append(got, e.Reason)
			}
			NewWithT(t).Expect(got).To(Equal(tt.want))
		})
	}
}

func TestSummariseBoundsTheLists(t *testing.T) {
	g := NewWithT(t)
	var verdicts []Verdict
	for i := range v1alpha1.MaxWorkloadEntries + 5 {
		v := verdict(string(rune('a'+i%26))+string(rune('a'+i/26)), v1alpha1.WorkloadRolling, func(v *Verdict) {
			v.Record = &v1alpha1.RolloutRecord{Kind: v.Ref.Kind, Name: v.Ref.Name, Generation: 2}
			v.Status.Message = string(make([]byte, 2*v1alpha1.MaxMessageLength))
			for range v1alpha1.MaxProbeEntries {
				v.Status.Probes = append(v.Status.Probes, v1alpha1.ProbeStatus{State: v1alpha1.ProbeRewritten})
			}
		})
		verdicts = append(verdicts, v)
	}
	verdicts = append(verdicts, verdict("failed", v1alpha1.WorkloadRolloutFailed))

	sum, entries, records := summarise(verdicts)

	g.Expect(sum.SelectedWorkloads).To(BeEquivalentTo(v1alpha1.MaxWorkloadEntries + 6))
	g.Expect(sum.RewrittenProbes).To(BeEquivalentTo((v1alpha1.MaxWorkloadEntries+5)*v1alpha1.MaxProbeEntries), "totals count every probe")
	g.Expect(sum.PendingProbes).To(BeEquivalentTo(v1alpha1.MaxWorkloadEntries + 6))
	g.Expect(entries).To(HaveLen(v1alpha1.MaxWorkloadEntries))
	g.Expect(entries[0].Name).To(Equal("failed"), "the most urgent first")
	g.Expect(records).To(HaveLen(v1alpha1.MaxWorkloadEntries))
	for _, e := range entries {
		g.Expect(len(e.Message)).To(BeNumerically("<=", v1alpha1.MaxMessageLength))
		g.Expect(len(e.Probes)).To(BeNumerically("<=", v1alpha1.MaxProbeEntries))
	}
	g.Expect(len(verdicts[0].Status.Message)).To(Equal(2*v1alpha1.MaxMessageLength), "the verdicts are not changed")
	g.Expect(verdicts[0].Status.Probes).To(HaveLen(v1alpha1.MaxProbeEntries + 1))
}

func TestReadinessOf(t *testing.T) {
	v := func(states ...v1alpha1.WorkloadState) []Verdict {
		var out []Verdict
		for i, s := range states {
			out = append(out, verdict(string(rune('a'+i)), s))
		}
		return out
	}
	tests := []struct {
		name      string
		invalid   string
		restoring bool
		verdicts  []Verdict
		failures  int
		want      readiness
	}{
		{"invalid selector", "bad", false, nil, 0, readiness{stalled: true, reason: v1alpha1.ReasonInvalidSelector, message: "Invalid spec.selector: bad"}},
		{"failure beats everything else", "", false, v(v1alpha1.WorkloadConflict, v1alpha1.WorkloadRolloutFailed, v1alpha1.WorkloadUnsupported), 1,
			readiness{stalled: true, reason: v1alpha1.ReasonRolloutFailed, message: "Rollout failed for Deployment/b"}},
		{"conflict beats unsupported", "", false, v(v1alpha1.WorkloadUnsupported, v1alpha1.WorkloadConflict), 0,
			readiness{stalled: true, reason: v1alpha1.ReasonConflict, message: "An older policy manages Deployment/b"}},
		{"unsupported", "", false, v(v1alpha1.WorkloadUnsupported, v1alpha1.WorkloadRedirected), 0,
			readiness{stalled: true, reason: v1alpha1.ReasonUnsupportedProbes, message: "Probes cannot be redirected safely for Deployment/a (see status.workloads)"}},
		{"apply failures beat progress", "", false, v(v1alpha1.WorkloadQueued), 2,
			readiness{reconciling: true, reason: v1alpha1.ReasonApplyFailed, message: "Failed to annotate 2 workload(s); retrying"}},
		{"in progress", "", false, v(v1alpha1.WorkloadRolling, v1alpha1.WorkloadQueued, v1alpha1.WorkloadRedirected), 0,
			readiness{reconciling: true, reason: v1alpha1.ReasonRolloutInProgress, message: "1 rolling, 1 queued, 1 of 3 workloads redirected"}},
		{"suspended", "", false, v(v1alpha1.WorkloadSuspended, v1alpha1.WorkloadManualRolloutRequired), 0,
			readiness{reason: v1alpha1.ReasonSuspended, message: "Suspended: 1 workload(s) need redirection"}},
		{"manual rollout", "", false, v(v1alpha1.WorkloadManualRolloutRequired, v1alpha1.WorkloadRedirected), 0,
			readiness{reason: v1alpha1.ReasonManualRolloutRequired, message: "1 workload(s) are annotated but need a manual rollout (paused or OnDelete)"}},
		{"redirected", "", false, v(v1alpha1.WorkloadRedirected, v1alpha1.WorkloadNotInMesh), 0,
			readiness{ready: true, reason: v1alpha1.ReasonRedirected, message: "1 of 2 selected workloads redirected"}},
		{"nothing to do", "", false, v(v1alpha1.WorkloadNotNeeded), 0,
			readiness{ready: true, reason: v1alpha1.ReasonNothingToRedirect, message: "None of the 1 selected workloads needs redirection"}},
		{"restoring", "", true, v(v1alpha1.WorkloadRolling, v1alpha1.WorkloadQueued), 0,
			readiness{reconciling: true, reason: v1alpha1.ReasonDeleting, message: "Restoring workloads before deletion: 1 rolling back, 1 waiting"}},
		{"restore refused", "", true, v(v1alpha1.WorkloadQueued), 1,
			readiness{reconciling: true, reason: v1alpha1.ReasonRestoreFailed, message: "Failed to restore 1 workload(s); retrying"}},
		{"restored", "", true, nil, 0, readiness{reason: v1alpha1.ReasonDeleting, message: "All workloads restored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(readinessOf(tt.invalid, tt.restoring, tt.verdicts, tt.failures)).To(Equal(tt.want))
		})
	}
}

func TestConditionsKeepOnlyTheOperatorsOwn(t *testing.T) {
	g := NewWithT(t)
	earlier := metav1.NewTime(partsNow.Add(-time.Hour))
	previous := []metav1.Condition{
		{Type: "ExternalCheck", Status: metav1.ConditionTrue, Reason: "Fine", LastTransitionTime: earlier},
		{Type: string(v1alpha1.ConditionReady), Status: metav1.ConditionTrue, Reason: "Redirected", LastTransitionTime: earlier},
	}
	got := conditions(previous, 4, partsNow, readiness{ready: true, reason: v1alpha1.ReasonRedirected, message: "ok"},
		metav1.Condition{Status: metav1.ConditionTrue, Reason: string(v1alpha1.ReasonNoUnhealthyEvents)})
	var types []string
	for _, c := range got {
		types = append(types, c.Type)
		g.Expect(c.ObservedGeneration).To(BeEquivalentTo(4))
	}
	g.Expect(types).To(Equal([]string{"Ready", "Reconciling", "Stalled", "ProbesHealthy"}))
	g.Expect(got[0].LastTransitionTime).To(Equal(earlier), "Ready stayed True, so its transition time stays")
	g.Expect(got[1].LastTransitionTime.Time).To(Equal(partsNow))
	g.Expect(previous).To(HaveLen(2), "the previous conditions are not changed")
}

func TestRequeueAfter(t *testing.T) {
	tests := []struct {
		name    string
		moments []time.Time
		want    time.Duration
	}{
		{"nothing", nil, 0},
		{"zero moments are ignored", []time.Time{{}, {}}, 0},
		{"the earliest", []time.Time{partsNow.Add(time.Minute), partsNow.Add(30 * time.Second), {}}, 30 * time.Second},
		{"under a second is kept", []time.Time{partsNow.Add(500 * time.Millisecond)}, 500 * time.Millisecond},
		{"a moment past counts as a second", []time.Time{partsNow.Add(-time.Minute)}, time.Second},
		{"a past moment does not hide a nearer future one", []time.Time{partsNow.Add(-time.Minute), partsNow.Add(200 * time.Millisecond)}, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(requeueAfter(partsNow, tt.moments...)).To(Equal(tt.want))
		})
	}
}

func TestFollowRollout(t *testing.T) {
	deadline := 10 * time.Minute
	record := &v1alpha1.RolloutRecord{Kind: v1alpha1.KindDeployment, Name: "a", Generation: 2, StartedAt: ptr.To(metav1.NewTime(partsNow.Add(-time.Minute)))}
	expired := &v1alpha1.RolloutRecord{Kind: v1alpha1.KindDeployment, Name: "a", Generation: 2, StartedAt: ptr.To(metav1.NewTime(partsNow.Add(-time.Hour)))}
	tests := []struct {
		name     string
		record   *v1alpha1.RolloutRecord
		progress rollout.Progress
		verified v1alpha1.ProbeState
		state    v1alpha1.WorkloadState
		reason   v1alpha1.StatusReason
		keeps    bool // the record stays
		inFlight bool
	}{
		{"own rollout past its deadline", expired, rollout.Progress{Message: "1 of 2 updated"}, v1alpha1.ProbePendingRollout,
			v1alpha1.WorkloadRolloutFailed, v1alpha1.StatusReasonProgressDeadlineExceeded, true, false},
		{"the Deployment's own deadline", record, rollout.Progress{Failed: true, Message: "timed out"}, v1alpha1.ProbePendingRollout,
			v1alpha1.WorkloadRolloutFailed, v1alpha1.StatusReasonProgressDeadlineExceeded, true, false},
		{"someone else's failed rollout is theirs", nil, rollout.Progress{Failed: true, Message: "timed out"}, v1alpha1.ProbePendingRollout,
			v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRolloutInProgress, false, false},
		{"paused", record, rollout.Progress{Blocked: v1alpha1.StatusReasonDeploymentPaused}, v1alpha1.ProbePendingRollout,
			v1alpha1.WorkloadManualRolloutRequired, v1alpha1.StatusReasonDeploymentPaused, false, false},
		{"own rollout under way", record, rollout.Progress{}, v1alpha1.ProbePendingRollout,
			v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRolloutInProgress, true, true},
		{"complete and verified", record, rollout.Progress{Complete: true}, v1alpha1.ProbeRewritten,
			v1alpha1.WorkloadRedirected, v1alpha1.StatusReasonProbesRewritten, false, false},
		{"complete with old pods", nil, rollout.Progress{Complete: true}, v1alpha1.ProbePendingRollout,
			v1alpha1.WorkloadManualRolloutRequired, v1alpha1.StatusReasonPodsOnOldTemplate, false, false},
		{"complete, not rewritten", nil, rollout.Progress{Complete: true}, v1alpha1.ProbeNotRewritten,
			v1alpha1.WorkloadUnsupported, v1alpha1.StatusReasonNotRewrittenByMesh, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			v := followRollout(verdict("a", v1alpha1.WorkloadQueued), tt.record, tt.progress, tt.verified, "the operator", partsNow, deadline)
			g.Expect(v.Status.State).To(Equal(tt.state), v.Status.Message)
			g.Expect(v.Status.Reason).To(Equal(tt.reason))
			g.Expect(v.Record != nil).To(Equal(tt.keeps))
			g.Expect(v.InFlight).To(Equal(tt.inFlight))
			g.Expect(v.RecheckAt.IsZero()).To(Equal(!tt.inFlight))
			g.Expect(v.RolloutCompleted).To(Equal(tt.progress.Complete && tt.record != nil))
		})
	}
}

func TestCompleteIsPure(t *testing.T) {
	g := NewWithT(t)
	d := Decision{
		Verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted), verdict("b", v1alpha1.WorkloadRolloutFailed)},
		Annotate: []Ref{{v1alpha1.KindDeployment, "a"}},
		Events:   []Event{{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete, Message: "done"}},
		Policy:   PolicyContext{Generation: 2, Now: partsNow, ProgressDeadline: time.Minute},
	}
	keep := Decision{
		Verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted), verdict("b", v1alpha1.WorkloadRolloutFailed)},
		Annotate: []Ref{{v1alpha1.KindDeployment, "a"}},
		Events:   []Event{{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete, Message: "done"}},
		Policy:   PolicyContext{Generation: 2, Now: partsNow, ProgressDeadline: time.Minute},
	}
	results := map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Generation: 5}}

	first := Complete(d, results)
	second := Complete(d, results)

	g.Expect(second).To(Equal(first), "the same decision and results give the same outcome")
	g.Expect(d).To(Equal(keep), "the decision is not changed")
	g.Expect(first.Status.Rollouts).To(ConsistOf(HaveField("Name", "a")))
	g.Expect(first.RequeueAfter).To(Equal(time.Minute))
}

// TestOutcomeSharesNoMemory: changing an Outcome changes neither the Decision nor the policy it
// was observed from.
func TestOutcomeSharesNoMemory(t *testing.T) {
	g := NewWithT(t)
	started := metav1.NewTime(partsNow.Add(-time.Minute))
	seen := metav1.NewTime(partsNow)
	previous := []v1alpha1.RolloutRecord{{Kind: v1alpha1.KindDeployment, Name: "a", Generation: 2, StartedAt: &started}}
	build := func() Decision {
		return Decision{
			InvalidSelector: "bad",
			Policy:          PolicyContext{Generation: 2, Now: partsNow, Previous: v1alpha1.ProbeRedirectPolicyStatus{Rollouts: previous}},
			Unhealthy: UnhealthyReport{Total: 1, Pods: []v1alpha1.UnhealthyPod{{Pod: "a-1", WorkloadKind: v1alpha1.KindDeployment,
				Workload: "a", Count: 2, LastSeen: &seen}}},
		}
	}
	d := build()
	out := Complete(d, nil)
	out.Status.Rollouts[0].StartedAt.Time = time.Time{}
	out.Status.Rollouts[0].Generation = 9
	out.Status.UnhealthyPods[0].Count = 99
	out.Status.UnhealthyPods[0].LastSeen.Time = time.Time{}
	g.Expect(d).To(Equal(build()))
	g.Expect(previous[0].StartedAt.Time).To(Equal(partsNow.Add(-time.Minute)), "the observed policy keeps its record")
	g.Expect(previous[0].Generation).To(BeEquivalentTo(2))

	long := string(make([]byte, 3*v1alpha1.MaxMessageLength))
	failed := Complete(Decision{Verdicts: []Verdict{verdict("a", v1alpha1.WorkloadQueued, admitted)}, Policy: PolicyContext{Now: partsNow}},
		map[Ref]ApplyResult{{v1alpha1.KindDeployment, "a"}: {Err: errors.New(long)}})
	g.Expect(failed.Events).To(HaveLen(1))
	g.Expect(len(failed.Events[0].Message)).To(BeNumerically("<=", v1alpha1.MaxMessageLength), "events.k8s.io rejects longer notes")
}

func TestObserveFailed(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.ProbeRedirectPolicy{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: v1alpha1.ProbeRedirectPolicyStatus{
		ObservedGeneration: 2,
		Summary:            v1alpha1.PolicySummary{SelectedWorkloads: 4},
		Conditions: []metav1.Condition{
			{Type: "ExternalCheck", Status: metav1.ConditionTrue, Reason: "Fine"},
			{Type: string(v1alpha1.ConditionReady), Status: metav1.ConditionTrue, Reason: string(v1alpha1.ReasonRedirected)},
		},
	}}
	out := ObserveFailed(p, partsNow, errors.New("listing pods: timeout"))
	g.Expect(out.Status.Summary).To(Equal(p.Status.Summary), "what was known stays")
	g.Expect(out.Status.ObservedGeneration).To(BeEquivalentTo(2))
	g.Expect(out.Status.Conditions).To(ConsistOf(And(HaveField("Type", "Ready"), HaveField("Status", metav1.ConditionUnknown),
		HaveField("Reason", string(v1alpha1.ReasonObserveFailed)), HaveField("Message", "listing pods: timeout"), HaveField("ObservedGeneration", BeEquivalentTo(3)))))
	g.Expect(p.Status.Conditions).To(HaveLen(2), "the policy is not changed")
	g.Expect(out.Events).To(BeEmpty())
}
