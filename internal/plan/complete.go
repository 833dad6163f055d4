package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

// Outcome is the status to write and the Events to record after the controller carried out a
// Decision.
type Outcome struct {
	// Status holds the operator's own conditions only; conditions other controllers set are theirs.
	Status v1alpha1.ProbeRedirectPolicyStatus
	Events []Event
	// RequeueAfter is when the policy needs another look even if nothing changes (a rollout
	// deadline, an Unhealthy event leaving the window); zero for never.
	RequeueAfter time.Duration
	// RestoreDone is true when a deleting policy has nothing left to restore.
	RestoreDone bool
}

// Complete folds the results of Annotate (or Restore) into the policy's status. results holds one
// entry per workload the controller changed; a workload the controller did not reach is absent.
// It is a pure function: d is not changed, and calling it twice gives the same Outcome.
func Complete(d Decision, results map[Ref]ApplyResult) Outcome {
	ctx := d.Policy
	applied := applyResults(d.Verdicts, results, d.Restoring, ctx.Now, ctx.ProgressDeadline)
	// The status shares no memory with the decision or the observed policy.
	status := v1alpha1.ProbeRedirectPolicyStatus{
		ObservedGeneration: ctx.Generation,
		UnhealthyPods:      deepCopies(d.Unhealthy.Pods),
	}
	status.Mesh, status.MTLSMode = policyMesh(ctx.Meshes, d.Verdicts)
	// Each mesh the policy names fills its own fields (Istio: istioVersion); a policy that names
	// none reports the first mesh's, as its MTLS column does.
	for i, m := range ctx.Meshes {
		if slices.Contains(strings.Split(status.Mesh, ","), string(m.Name())) || (status.Mesh == "" && i == 0) {
			m.FillStatus(&status)
		}
	}
	status.Summary, status.Workloads, status.Rollouts = summarise(applied.verdicts)
	status.Summary.UnhealthyPods = d.Unhealthy.Total
	if d.InvalidSelector != "" {
		// Nothing can be evaluated; keep the deadlines of rollouts already in flight.
		status.Rollouts = deepCopies(ctx.Previous.Rollouts)
	}
	r := readinessOf(d.InvalidSelector, d.Restoring, applied.verdicts, applied.failures)
	status.Conditions = conditions(ctx.Previous.Conditions, ctx.Generation, ctx.Now, r, probesHealthy(d.Unhealthy))

	events := slices.Concat(d.Events, applied.events, rolloutFailures(ctx.Previous.Workloads, applied.verdicts), stalledEvent(ctx.Previous.Conditions, r))
	for i := range events {
		// events.k8s.io rejects a note over 1 KiB, and an API error can be longer.
		events[i].Message = truncate(events[i].Message, v1alpha1.MaxMessageLength)
	}
	return Outcome{
		Status:       status,
		Events:       events,
		RequeueAfter: requeueAfter(ctx.Now, slices.Concat(d.RecheckAt, applied.recheckAt, []time.Time{d.Unhealthy.NextExpiry})...),
		RestoreDone:  d.Restoring && d.InvalidSelector == "" && len(status.Rollouts) == 0 && !anyLeftToRestore(applied.verdicts),
	}
}

// ObserveFailed is the outcome when the controller could not read what a decision needs: the
// previous status stays, and Ready turns Unknown with the cause.
func ObserveFailed(policy *v1alpha1.ProbeRedirectPolicy, now time.Time, cause error) Outcome {
	status := *policy.Status.DeepCopy()
	status.Conditions = OwnConditions(status.Conditions)
	setCondition(&status.Conditions, policy.Generation, now, v1alpha1.ConditionReady, metav1.ConditionUnknown,
		v1alpha1.ReasonObserveFailed, cause.Error())
	return Outcome{Status: status}
}

// applied is the verdicts after the controller's changes, with what those changes mean.
type applied struct {
	verdicts []Verdict
	events   []Event
	// failures counts the changes the API server refused.
	failures  int
	recheckAt []time.Time
}

// applyResults folds the controller's results into copies of the admitted verdicts: a started
// rollout gets its record and deadline, a refused change its reason, and each an Event.
func applyResults(verdicts []Verdict, results map[Ref]ApplyResult, restoring bool, now time.Time, deadline time.Duration) applied {
	out := applied{verdicts: make([]Verdict, len(verdicts))}
	for i, v := range verdicts {
		v.Status = *v.Status.DeepCopy()
		out.verdicts[i] = v
		result, ok := results[v.Ref]
		if !v.Admitted || !ok {
			// Not admitted, or not attempted (the controller stopped early): unchanged.
			continue
		}
		s := &out.verdicts[i].Status
		if result.Err != nil {
			out.failures++
			verb, reason, eventReason := "annotate", v1alpha1.StatusReasonAnnotateFailed, v1alpha1.EventAnnotateFailed
			if restoring {
				verb, reason, eventReason = "restore", v1alpha1.StatusReasonRestoreFailed, v1alpha1.EventRestoreFailed
			}
			s.Reason, s.Message = reason, truncate(result.Err.Error(), v1alpha1.MaxMessageLength)
			out.events = append(out.events, Event{Type: corev1.EventTypeWarning, Reason: eventReason,
				Message: fmt.Sprintf("Failed to %s %s: %v", verb, v.Ref, result.Err), Workload: &v.Ref})
			continue
		}
		started := metav1.NewTime(now.Truncate(time.Second))
		out.verdicts[i].InFlight = true
		out.verdicts[i].Record = &v1alpha1.RolloutRecord{Kind: v.Ref.Kind, Name: v.Ref.Name, Generation: max(result.Generation, 1), StartedAt: &started}
		out.recheckAt = append(out.recheckAt, now.Add(deadline))
		if restoring {
			s.State, s.Reason, s.Message = v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRestoring, "annotation removed; rolling back to un-rewritten probes"
			out.events = append(out.events, Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRestored,
				Message: fmt.Sprintf("Removed %s from %s; rollout started", v.Annotation.Key, v.Ref), Workload: &v.Ref})
			continue
		}
		out.verdicts[i].Annotated = true
		s.State, s.Reason, s.Message = v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRolloutStarted, "annotated by the operator; rollout started"
		for j := range s.Probes {
			if s.Probes[j].State == v1alpha1.ProbePendingRollout {
				s.Probes[j].Reason = v1alpha1.StatusReasonRolloutStarted
			}
		}
		out.events = append(out.events,
			Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventAnnotated,
				Message: fmt.Sprintf("Set %s=%s on the pod template of %s", v.Annotation.Key, v.Annotation.Value, v.Ref), Workload: &v.Ref},
			Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutStarted,
				Message: fmt.Sprintf("Rollout of %s started (generation %d)", v.Ref, result.Generation), Workload: &v.Ref})
	}
	return out
}

// rolloutFailures returns a Warning for each workload whose rollout failed since the previous
// status.
func rolloutFailures(previous []v1alpha1.WorkloadStatus, verdicts []Verdict) []Event {
	was := map[Ref]v1alpha1.WorkloadState{}
	for _, w := range previous {
		was[Ref{Kind: w.Kind, Name: w.Name}] = w.State
	}
	var events []Event
	for _, v := range verdicts {
		if v.Status.State == v1alpha1.WorkloadRolloutFailed && was[v.Ref] != v1alpha1.WorkloadRolloutFailed {
			events = append(events, Event{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed,
				Message: fmt.Sprintf("Rollout of %s failed: %s", v.Ref, v.Status.Message), Workload: &v.Ref})
		}
	}
	return events
}

// stalledEvents maps the Stalled reasons that have an Event of their own; RolloutFailed is
// reported per workload by rolloutFailures.
var stalledEvents = map[v1alpha1.ConditionReason]v1alpha1.EventReason{
	v1alpha1.ReasonInvalidSelector:   v1alpha1.EventInvalidSelector,
	v1alpha1.ReasonConflict:          v1alpha1.EventConflict,
	v1alpha1.ReasonUnsupportedProbes: v1alpha1.EventUnsupportedProbes,
}

// stalledEvent returns a Warning when the policy becomes Stalled for a new reason.
func stalledEvent(previous []metav1.Condition, r readiness) []Event {
	reason, ok := stalledEvents[r.reason]
	if !r.stalled || !ok {
		return nil
	}
	if prev := meta.FindStatusCondition(previous, string(v1alpha1.ConditionReady)); prev != nil && prev.Reason == string(r.reason) {
		return nil
	}
	return []Event{{Type: corev1.EventTypeWarning, Reason: reason, Message: r.message}}
}

// summarise counts the exact totals and builds the bounded workload and rollout lists, the
// workloads most urgent first.
func summarise(verdicts []Verdict) (v1alpha1.PolicySummary, []v1alpha1.WorkloadStatus, []v1alpha1.RolloutRecord) {
	var sum v1alpha1.PolicySummary
	var records []v1alpha1.RolloutRecord
	inFlightRecords := 0
	entries := make([]v1alpha1.WorkloadStatus, 0, len(verdicts))
	for _, v := range verdicts {
		sum.SelectedWorkloads++
		if v.Annotated {
			sum.AnnotatedWorkloads++
		}
		if v.RolledOut {
			sum.RolledOutWorkloads++
		}
		for _, ps := range v.Status.Probes {
			switch ps.State {
			case v1alpha1.ProbeRewritten:
				sum.RewrittenProbes++
			case v1alpha1.ProbePendingRollout, v1alpha1.ProbeNotRewritten:
				sum.PendingProbes++
			}
		}
		if v.Record != nil {
			// Records of rollouts in flight first: they hold the slots and the deadlines, and must
			// survive the bound on the list (maxConcurrent is at most 50, the list holds 100).
			if v.InFlight {
				records = slices.Insert(records, inFlightRecords, *v.Record.DeepCopy())
				inFlightRecords++
			} else {
				records = append(records, *v.Record.DeepCopy())
			}
		}
		entry := *v.Status.DeepCopy()
		entry.Message = truncate(entry.Message, v1alpha1.MaxMessageLength)
		entry.Probes = bounded(entry.Probes, v1alpha1.MaxProbeEntries)
		entries = append(entries, entry)
	}
	slices.SortStableFunc(entries, func(a, b v1alpha1.WorkloadStatus) int {
		return stateUrgency[a.State] - stateUrgency[b.State]
	})
	return sum, bounded(entries, v1alpha1.MaxWorkloadEntries), bounded(records, v1alpha1.MaxWorkloadEntries)
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

// readiness is the verdict behind the Ready, Reconciling and Stalled conditions.
type readiness struct {
	ready, reconciling, stalled bool
	reason                      v1alpha1.ConditionReason
	message                     string
}

// readinessOf decides Ready, Reconciling and Stalled from the verdicts; failures counts the
// changes the API server refused in this reconcile.
func readinessOf(invalidSelector string, restoring bool, verdicts []Verdict, failures int) readiness {
	if invalidSelector != "" {
		return readiness{stalled: true, reason: v1alpha1.ReasonInvalidSelector, message: "Invalid spec.selector: " + invalidSelector}
	}
	count := map[v1alpha1.WorkloadState]int{}
	named := map[v1alpha1.WorkloadState][]string{}
	for _, v := range verdicts {
		count[v.Status.State]++
		named[v.Status.State] = append(named[v.Status.State], v.Ref.String())
	}
	total := len(verdicts)
	inProgress := count[v1alpha1.WorkloadRolling] + count[v1alpha1.WorkloadQueued]
	if restoring {
		return restoreReadiness(count, failures)
	}
	switch {
	case count[v1alpha1.WorkloadRolloutFailed] > 0:
		return readiness{stalled: true, reason: v1alpha1.ReasonRolloutFailed,
			message: fmt.Sprintf("Rollout failed for %s", names(named[v1alpha1.WorkloadRolloutFailed]))}
	case count[v1alpha1.WorkloadConflict] > 0:
		return readiness{stalled: true, reason: v1alpha1.ReasonConflict,
			message: fmt.Sprintf("An older policy manages %s", names(named[v1alpha1.WorkloadConflict]))}
	case count[v1alpha1.WorkloadUnsupported] > 0:
		return readiness{stalled: true, reason: v1alpha1.ReasonUnsupportedProbes,
			message: fmt.Sprintf("Probes cannot be redirected safely for %s (see status.workloads)", names(named[v1alpha1.WorkloadUnsupported]))}
	case failures > 0:
		return readiness{reconciling: true, reason: v1alpha1.ReasonApplyFailed,
			message: fmt.Sprintf("Failed to annotate %d workload(s); retrying", failures)}
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

// restoreReadiness decides the conditions of a deleting policy that restores its workloads.
func restoreReadiness(count map[v1alpha1.WorkloadState]int, failures int) readiness {
	switch {
	case failures > 0:
		return readiness{reconciling: true, reason: v1alpha1.ReasonRestoreFailed,
			message: fmt.Sprintf("Failed to restore %d workload(s); retrying", failures)}
	case count[v1alpha1.WorkloadRolling]+count[v1alpha1.WorkloadQueued] > 0:
		return readiness{reconciling: true, reason: v1alpha1.ReasonDeleting,
			message: fmt.Sprintf("Restoring workloads before deletion: %d rolling back, %d waiting",
				count[v1alpha1.WorkloadRolling], count[v1alpha1.WorkloadQueued])}
	default:
		return readiness{reason: v1alpha1.ReasonDeleting, message: "All workloads restored"}
	}
}

func names(list []string) string {
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + fmt.Sprintf(" and %d more", len(list)-5)
	}
	return strings.Join(list, ", ")
}

// probesHealthy is the ProbesHealthy condition for the Unhealthy report.
func probesHealthy(report UnhealthyReport) metav1.Condition {
	if report.Total == 0 {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: string(v1alpha1.ReasonNoUnhealthyEvents),
			Message: "No Unhealthy events for selected pods within the window"}
	}
	first := report.Pods[0]
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: string(v1alpha1.ReasonUnhealthyPods),
		Message: fmt.Sprintf("%d pod(s) reported Unhealthy; latest %s: %s", report.Total, first.Pod, first.LastMessage)}
}

// conditions returns the operator's own conditions after r and probesHealthy, starting from the
// previous ones so that a condition keeps its lastTransitionTime while its status stays.
func conditions(previous []metav1.Condition, generation int64, now time.Time, r readiness, health metav1.Condition) []metav1.Condition {
	out := OwnConditions(previous)
	set := func(kind v1alpha1.ConditionType, ok bool, reason v1alpha1.ConditionReason, message string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		setCondition(&out, generation, now, kind, status, reason, message)
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
	setCondition(&out, generation, now, v1alpha1.ConditionProbesHealthy, health.Status, v1alpha1.ConditionReason(health.Reason), health.Message)
	return out
}

func setCondition(conditions *[]metav1.Condition, generation int64, now time.Time, kind v1alpha1.ConditionType,
	status metav1.ConditionStatus, reason v1alpha1.ConditionReason, message string) {
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: string(kind), Status: status, Reason: string(reason), Message: truncate(message, v1alpha1.MaxMessageLength),
		ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
	})
}

// OwnConditions returns a copy of the conditions whose type is one of the operator's own
// (v1alpha1.OwnConditionTypes), in their order.
func OwnConditions(all []metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range all {
		if slices.Contains(v1alpha1.OwnConditionTypes, v1alpha1.ConditionType(c.Type)) {
			out = append(out, c)
		}
	}
	return out
}

// requeueAfter is how long until the earliest of the moments, zero ones ignored; a moment already
// past counts as a second from now. It is zero when every moment is.
func requeueAfter(now time.Time, moments ...time.Time) time.Duration {
	var after time.Duration
	for _, at := range moments {
		if at.IsZero() {
			continue
		}
		d := at.Sub(now)
		if d <= 0 {
			d = time.Second
		}
		if after == 0 || d < after {
			after = d
		}
	}
	return after
}

// deepCopies returns a deep copy of list (nil for an empty one).
func deepCopies[T any, PT interface {
	*T
	DeepCopy() PT
}](list []T) []T {
	if len(list) == 0 {
		return nil
	}
	out := make([]T, len(list))
	for i := range list {
		out[i] = *PT(&list[i]).DeepCopy()
	}
	return out
}

// policyMesh names the meshes of the policy's managed workloads in the order of meshes, and the
// namespace-level mTLS mode of the first. Without a managed workload in a mesh, the meshes whose
// injection the namespace turns on are named; without those, none, with the first mesh's mode.
func policyMesh(meshes []mesh.Mesh, verdicts []Verdict) (string, v1alpha1.MTLSMode) {
	inUse := map[v1alpha1.MeshName]bool{}
	for _, v := range verdicts {
		if v.Status.Mesh != "" && v.Status.State != v1alpha1.WorkloadNotInMesh && v.Status.State != v1alpha1.WorkloadConflict {
			inUse[v.Status.Mesh] = true
		}
	}
	var named []mesh.Mesh
	for _, m := range meshes {
		if inUse[m.Name()] {
			named = append(named, m)
		}
	}
	if len(named) == 0 {
		for _, m := range meshes {
			if m.InjectsNamespace() {
				named = append(named, m)
			}
		}
	}
	var names []string
	for _, m := range named {
		names = append(names, string(m.Name()))
	}
	switch {
	case len(named) > 0:
		return strings.Join(names, ","), named[0].NamespaceMode()
	case len(meshes) > 0:
		return "", meshes[0].NamespaceMode()
	}
	return "", ""
}
