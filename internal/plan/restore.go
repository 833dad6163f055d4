package plan

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

const rewriteAnnotationName = mesh.RewriteAnnotation

// DecideRestore plans, for a policy being deleted with onDelete: Restore, the removal of the
// rewrite annotation the operator added to the workloads it selects, within the same rollout
// limits. Workloads another live policy selects keep their annotation; annotations a person wrote
// are never removed.
func DecideRestore(in Input) *Decision {
	in = withDefaults(in)
	d := &Decision{in: in, restoring: true}
	selector, err := selectorOf(in.Policy)
	if err != nil {
		// Nothing can be selected, so nothing is restored.
		return d
	}
	if in.Policy.Spec.Suspend {
		// A suspended policy changes nothing, not even on its way out.
		d.events = append(d.events, Event{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRestoreSkipped,
			Message: "The policy is suspended, so its annotations were kept"})
		return d
	}
	deadline := progressDeadline(in.Policy.Spec)
	var candidates []*evaluation
	inFlight := 0
	for _, w := range sortedWorkloads(in.Workloads) {
		if !selects(in.Policy, selector, w) || selectedByAnotherPolicy(in, w) {
			continue
		}
		ref := w.Ref()
		e := &evaluation{ref: ref, status: v1alpha1.WorkloadStatus{Kind: ref.Kind, Name: ref.Name}}
		setting, _ := mesh.ReadRewriteSetting(w.Template().Annotations)
		record := findRecord(in.Policy.Status.Rollouts, ref)
		stale := record != nil && record.Generation > w.Object().GetGeneration()
		switch {
		case w.ManagedByOperator && setting == mesh.RewriteEnabled && !stale:
			e.status.State, e.status.Reason, e.status.Message = v1alpha1.WorkloadQueued, "WaitingToRestore", "the operator's annotation is removed next"
			candidates = append(candidates, e)
		case record != nil:
			progress := w.Progress(record.Generation)
			switch {
			case stale:
				// The cache has not caught up with the removal: keep waiting.
			case progress.Complete:
				d.events = append(d.events, Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
					Message: fmt.Sprintf("Rollout of %s completed after restore", ref)})
				continue
			case rollout.Expired(record.StartedAt.Time, in.Now, secondsOf(deadline)):
				d.events = append(d.events, Event{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed,
					Message: fmt.Sprintf("Rollout of %s did not finish within %ds after restore; not waiting longer", ref, deadline)})
				continue
			}
			e.record = record
			e.inFlight = true
			inFlight++
			e.status.State, e.status.Reason, e.status.Message = v1alpha1.WorkloadRolling, "Restoring", progress.Message
			d.requeueAt(record.StartedAt.Add(secondsOf(deadline)))
		default:
			continue
		}
		d.evaluations = append(d.evaluations, e)
	}
	slots := rollout.Admit(len(candidates), inFlight, maxConcurrent(in.Policy.Spec), false)
	for i := 0; i < slots; i++ {
		candidates[i].admitted = true
		d.Restore = append(d.Restore, candidates[i].ref)
	}
	return d
}

// selectedByAnotherPolicy reports whether a live policy other than the deleting one selects w.
func selectedByAnotherPolicy(in Input, w Workload) bool {
	for _, p := range in.Policies {
		if p.UID == in.Policy.UID || p.DeletionTimestamp != nil {
			continue
		}
		if selector, err := selectorOf(p); err == nil && selects(p, selector, w) {
			return true
		}
	}
	return false
}

// anyLeftToRestore reports whether some workload still carries the operator's annotation.
func (d *Decision) anyLeftToRestore() bool {
	for _, e := range d.evaluations {
		if e.status.State == v1alpha1.WorkloadQueued {
			return true
		}
	}
	return false
}
