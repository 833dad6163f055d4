package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/unhealthy"
)

// Outcome is the status to write and the Events to record after the controller carried out a
// Decision.
type Outcome struct {
	Status v1alpha1.ProbeRedirectPolicyStatus
	Events []Event
	// RequeueAfter is when the policy needs another look even if nothing changes (a rollout
	// deadline, an Unhealthy event leaving the window); zero for never.
	RequeueAfter time.Duration
	// RestoreDone is true when a deleting policy has nothing left to restore.
	RestoreDone bool
}

// Complete folds the results of Annotate (or Restore) into the policy's status. results holds one
// entry per workload the controller changed; a workload the controller could not reach is absent.
func (d *Decision) Complete(results map[Ref]ApplyResult) Outcome {
	in := d.in
	p := in.Policy
	out := Outcome{}
	status := v1alpha1.ProbeRedirectPolicyStatus{
		ObservedGeneration: p.Generation,
		Conditions:         append([]metav1.Condition(nil), p.Status.Conditions...),
		MTLSMode:           in.MTLS.NamespaceMode(p.Namespace),
	}
	events := append([]Event(nil), d.events...)
	applyErrs := 0

	for _, e := range d.evaluations {
		if !e.admitted {
			continue
		}
		result, ok := results[e.ref]
		switch {
		case !ok:
			// Not attempted (the controller stopped early): stays queued.
		case result.Err != nil:
			applyErrs++
			e.status.Reason, e.status.Message = "AnnotateFailed", truncate(result.Err.Error())
			verb, reason := "annotate", v1alpha1.EventAnnotateFailed
			if d.restoring {
				verb, reason = "restore", v1alpha1.EventRestoreFailed
			}
			events = append(events, Event{Type: corev1.EventTypeWarning, Reason: reason,
				Message: fmt.Sprintf("Failed to %s %s: %v", verb, e.ref, result.Err)})
		default:
			e.inFlight = true
			e.record = &v1alpha1.RolloutRecord{Kind: e.ref.Kind, Name: e.ref.Name, Generation: max(result.Generation, 1),
				StartedAt: metav1.NewTime(in.Now.Truncate(time.Second))}
			d.requeueAt(in.Now.Add(time.Duration(progressDeadline(p.Spec)) * time.Second))
			if d.restoring {
				e.status.State, e.status.Reason, e.status.Message = v1alpha1.WorkloadRolling, "Restoring", "annotation removed; rolling back to un-rewritten probes"
				events = append(events, Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRestored,
					Message: fmt.Sprintf("Removed %s from %s; rollout started", rewriteAnnotationName, e.ref)})
				continue
			}
			e.annotated = true
			e.status.State, e.status.Reason, e.status.Message = v1alpha1.WorkloadRolling, "RolloutStarted", "annotated by the operator; rollout started"
			for i := range e.status.Probes {
				if e.status.Probes[i].State == v1alpha1.ProbePendingRollout {
					e.status.Probes[i].Reason = "RolloutStarted"
				}
			}
			events = append(events,
				Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventAnnotated,
					Message: fmt.Sprintf("Set %s=true on the pod template of %s", rewriteAnnotationName, e.ref)},
				Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutStarted,
					Message: fmt.Sprintf("Rollout of %s started (generation %d)", e.ref, result.Generation)})
		}
	}

	previous := map[Ref]v1alpha1.WorkloadState{}
	for _, w := range p.Status.Workloads {
		previous[Ref{Kind: w.Kind, Name: w.Name}] = w.State
	}
	for _, e := range d.evaluations {
		if e.status.State == v1alpha1.WorkloadRolloutFailed && previous[e.ref] != v1alpha1.WorkloadRolloutFailed {
			events = append(events, Event{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed,
				Message: fmt.Sprintf("Rollout of %s failed: %s", e.ref, e.status.Message)})
		}
	}

	status.Summary, status.Workloads, status.Rollouts = d.summarise()
	if d.invalid != nil {
		// Nothing can be evaluated; keep the deadlines of rollouts already in flight.
		status.Rollouts = p.Status.Rollouts
	}
	status.UnhealthyPods, status.Summary.UnhealthyPods = d.unhealthyPods()

	ready := d.readiness(applyErrs)
	setConditions(&status, p.Generation, in.Now, ready, unhealthyCondition(status))
	if prev := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady); ready.stalled &&
		ready.reason != v1alpha1.ReasonRolloutFailed && (prev == nil || prev.Reason != ready.reason) {
		events = append(events, Event{Type: corev1.EventTypeWarning, Reason: ready.reason, Message: ready.message})
	}

	windowed := map[string]unhealthy.Record{}
	for name, r := range d.unhealthyRecords() {
		windowed[name] = r.Record
	}
	if next := unhealthy.NextExpiry(windowed, in.Config.UnhealthyWindow); !next.IsZero() {
		d.requeueAt(next.Add(time.Second))
	}
	out.Status, out.Events, out.RequeueAfter = status, events, d.requeue
	out.RestoreDone = d.restoring && d.invalid == nil && len(status.Rollouts) == 0 && !d.anyLeftToRestore()
	return out
}

// summarise counts the exact totals and builds the bounded workload list, most urgent first.
func (d *Decision) summarise() (v1alpha1.PolicySummary, []v1alpha1.WorkloadStatus, []v1alpha1.RolloutRecord) {
	var sum v1alpha1.PolicySummary
	var records []v1alpha1.RolloutRecord
	entries := make([]v1alpha1.WorkloadStatus, 0, len(d.evaluations))
	for _, e := range d.evaluations {
		sum.SelectedWorkloads++
		if e.annotated {
			sum.AnnotatedWorkloads++
		}
		if e.rolledOut {
			sum.RolledOutWorkloads++
		}
		for _, ps := range e.status.Probes {
			switch ps.State {
			case v1alpha1.ProbeRewritten:
				sum.RewrittenProbes++
			case v1alpha1.ProbePendingRollout, v1alpha1.ProbeNotRewritten:
				sum.PendingProbes++
			}
		}
		if e.record != nil {
			records = append(records, *e.record)
		}
		e.status.Message = truncate(e.status.Message)
		entries = append(entries, e.status)
	}
	sort.SliceStable(entries, func(i, j int) bool {
		return stateUrgency[entries[i].State] < stateUrgency[entries[j].State]
	})
	if len(entries) > MaxWorkloadEntries {
		entries = entries[:MaxWorkloadEntries]
	}
	if len(records) > MaxWorkloadEntries {
		records = records[:MaxWorkloadEntries]
	}
	if len(entries) == 0 {
		entries = nil
	}
	return sum, entries, records
}

// stateUrgency orders the workload list: what needs a person first, settled workloads last.
var stateUrgency = map[v1alpha1.WorkloadState]int{
	v1alpha1.WorkloadRolloutFailed:         0,
	v1alpha1.WorkloadUnsupported:           1,
	v1alpha1.WorkloadConflict:              2,
	v1alpha1.WorkloadManualRolloutRequired: 3,
	v1alpha1.WorkloadRolling:               4,
	v1alpha1.WorkloadQueued:                5,
	v1alpha1.WorkloadSuspended:             6,
	v1alpha1.WorkloadRedirected:            7,
	v1alpha1.WorkloadOptedOut:              8,
	v1alpha1.WorkloadNotNeeded:             9,
	v1alpha1.WorkloadNotInMesh:             10,
}

// unhealthyRecords returns the windowed Unhealthy records of live pods of workloads this policy
// manages (conflicting workloads are reported by the policy that manages them).
func (d *Decision) unhealthyRecords() map[string]podRecord {
	managed := map[Ref]bool{}
	for _, e := range d.evaluations {
		if e.status.State != v1alpha1.WorkloadConflict {
			managed[e.ref] = true
		}
	}
	owners := map[string]Ref{}
	uids := map[string]types.UID{}
	for _, pod := range d.in.Pods {
		if ref, ok := WorkloadOfPod(pod); ok && managed[ref] {
			owners[pod.Name], uids[pod.Name] = ref, pod.UID
		}
	}
	// A pod recreated under the same name (StatefulSets do that) must not inherit the events of
	// its predecessor.
	var events []corev1.Event
	for _, e := range d.in.Events {
		if uid, ok := uids[e.InvolvedObject.Name]; ok && (e.InvolvedObject.UID == "" || e.InvolvedObject.UID == uid) {
			events = append(events, e)
		}
	}
	out := map[string]podRecord{}
	for name, rec := range unhealthy.Summarize(events, d.in.Now, d.in.Config.UnhealthyWindow) {
		if ref, ok := owners[name]; ok {
			out[name] = podRecord{Record: rec, workload: ref}
		}
	}
	return out
}

type podRecord struct {
	unhealthy.Record
	workload Ref
}

func (d *Decision) unhealthyPods() ([]v1alpha1.UnhealthyPod, int32) {
	records := d.unhealthyRecords()
	list := make([]v1alpha1.UnhealthyPod, 0, len(records))
	for _, r := range records {
		list = append(list, v1alpha1.UnhealthyPod{
			Pod: r.Pod, WorkloadKind: r.workload.Kind, Workload: r.workload.Name,
			ProbeKind: r.ProbeKind, Count: r.Count, LastMessage: truncate(r.Message),
			LastSeen: metav1.NewTime(r.LastSeen.Truncate(time.Second)),
		})
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].LastSeen.Equal(&list[j].LastSeen) {
			return list[j].LastSeen.Before(&list[i].LastSeen)
		}
		return list[i].Pod < list[j].Pod
	})
	total := int32(len(list))
	if len(list) > MaxUnhealthyPodEntries {
		list = list[:MaxUnhealthyPodEntries]
	}
	if len(list) == 0 {
		list = nil
	}
	return list, total
}

// readiness is the verdict behind the Ready, Reconciling and Stalled conditions.
type readiness struct {
	ready, reconciling, stalled bool
	reason, message             string
}

func (d *Decision) readiness(applyErrs int) readiness {
	if d.invalid != nil {
		return readiness{stalled: true, reason: v1alpha1.ReasonInvalidSelector, message: "Invalid spec.selector: " + d.invalid.Error()}
	}
	count := map[v1alpha1.WorkloadState]int{}
	var failedNames, conflictNames, unsupportedNames []string
	for _, e := range d.evaluations {
		count[e.status.State]++
		switch e.status.State {
		case v1alpha1.WorkloadRolloutFailed:
			failedNames = append(failedNames, e.ref.String())
		case v1alpha1.WorkloadConflict:
			conflictNames = append(conflictNames, e.ref.String())
		case v1alpha1.WorkloadUnsupported:
			unsupportedNames = append(unsupportedNames, e.ref.String())
		}
	}
	total := len(d.evaluations)
	inProgress := count[v1alpha1.WorkloadRolling] + count[v1alpha1.WorkloadQueued]
	if d.restoring {
		if inProgress > 0 || d.anyLeftToRestore() {
			return readiness{reconciling: true, reason: v1alpha1.ReasonDeleting,
				message: fmt.Sprintf("Restoring workloads before deletion: %d rolling back, %d waiting",
					count[v1alpha1.WorkloadRolling], count[v1alpha1.WorkloadQueued])}
		}
		return readiness{reason: v1alpha1.ReasonDeleting, message: "All workloads restored"}
	}
	switch {
	case len(failedNames) > 0:
		return readiness{stalled: true, reason: v1alpha1.ReasonRolloutFailed,
			message: fmt.Sprintf("Rollout failed for %s", names(failedNames))}
	case len(conflictNames) > 0:
		return readiness{stalled: true, reason: v1alpha1.ReasonConflict,
			message: fmt.Sprintf("An older policy manages %s", names(conflictNames))}
	case len(unsupportedNames) > 0:
		return readiness{stalled: true, reason: v1alpha1.ReasonUnsupportedProbes,
			message: fmt.Sprintf("Probes cannot be redirected safely for %s (see status.workloads)", names(unsupportedNames))}
	case applyErrs > 0:
		return readiness{reconciling: true, reason: v1alpha1.ReasonApplyFailed,
			message: fmt.Sprintf("Failed to annotate %d workload(s); retrying", applyErrs)}
	case inProgress > 0:
		return readiness{reconciling: true, reason: v1alpha1.ReasonRolloutInProgress,
			message: fmt.Sprintf("%d rolling, %d queued, %d of %d workloads redirected",
				count[v1alpha1.WorkloadRolling], count[v1alpha1.WorkloadQueued], count[v1alpha1.WorkloadRedirected], total)}
	case count[v1alpha1.WorkloadSuspended] > 0:
		return readiness{reason: v1alpha1.ReasonSuspended,
			message: fmt.Sprintf("Suspended: %d workload(s) need redirection", count[v1alpha1.WorkloadSuspended])}
	case count[v1alpha1.WorkloadManualRolloutRequired] > 0:
		return readiness{reason: v1alpha1.ReasonManualRolloutRequired,
			message: fmt.Sprintf("%d workload(s) are annotated but need a manual rollout (paused or OnDelete)", count[v1alpha1.WorkloadManualRolloutRequired])}
	case count[v1alpha1.WorkloadRedirected] > 0:
		return readiness{ready: true, reason: v1alpha1.ReasonRedirected,
			message: fmt.Sprintf("%d of %d selected workloads redirected", count[v1alpha1.WorkloadRedirected], total)}
	default:
		return readiness{ready: true, reason: v1alpha1.ReasonNothingToRedirect,
			message: fmt.Sprintf("None of the %d selected workloads needs redirection", total)}
	}
}

func names(list []string) string {
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + fmt.Sprintf(" and %d more", len(list)-5)
	}
	return strings.Join(list, ", ")
}

func unhealthyCondition(status v1alpha1.ProbeRedirectPolicyStatus) metav1.Condition {
	if status.Summary.UnhealthyPods == 0 {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNoUnhealthyEvents,
			Message: "No Unhealthy events for selected pods within the window"}
	}
	first := status.UnhealthyPods[0]
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonUnhealthyPods,
		Message: truncate(fmt.Sprintf("%d pod(s) reported Unhealthy; latest %s: %s", status.Summary.UnhealthyPods, first.Pod, first.LastMessage))}
}

func setConditions(status *v1alpha1.ProbeRedirectPolicyStatus, generation int64, now time.Time, r readiness, probesHealthy metav1.Condition) {
	set := func(kind string, ok bool, reason, message string) {
		c := metav1.Condition{Type: kind, Status: metav1.ConditionFalse, Reason: reason, Message: truncate(message),
			ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second))}
		if ok {
			c.Status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&status.Conditions, c)
	}
	set(v1alpha1.ConditionReady, r.ready, r.reason, r.message)
	if r.reconciling {
		set(v1alpha1.ConditionReconciling, true, r.reason, r.message)
	} else {
		set(v1alpha1.ConditionReconciling, false, v1alpha1.ReasonSucceeded, "Nothing in progress")
	}
	if r.stalled {
		set(v1alpha1.ConditionStalled, true, r.reason, r.message)
	} else {
		set(v1alpha1.ConditionStalled, false, v1alpha1.ReasonSucceeded, "Not stalled")
	}
	probesHealthy.Type = v1alpha1.ConditionProbesHealthy
	set(probesHealthy.Type, probesHealthy.Status == metav1.ConditionTrue, probesHealthy.Reason, probesHealthy.Message)
}
