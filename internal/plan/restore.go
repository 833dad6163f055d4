package plan

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

// DecideRestore plans, for a policy being deleted with onDelete: Restore, the removal of the
// rewrite annotation the operator added to the workloads it selects, within the same rollout
// limits. Workloads another live policy selects keep their annotation; annotations a person wrote
// are never removed. A suspended policy restores nothing and says so in an Event.
func DecideRestore(in Input) Decision {
	d := newDecision(in, true)
	selector, err := selectorOf(in.Policy)
	if err != nil {
		// Nothing can be selected, so nothing is restored.
		return d
	}
	if suspended(in.Policy.Spec) {
		d.Events = append(d.Events, Event{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRestoreSkipped,
			Message: "The policy is suspended, so its annotations were kept"})
		return d
	}
	for _, w := range sortedWorkloads(in.Workloads) {
		if !selects(in.Policy, selector, w) || selectedByAnotherPolicy(in, w) {
			continue
		}
		v, event, keep := judgeRestore(in, w)
		if event != nil {
			d.Events = append(d.Events, *event)
		}
		if keep {
			d.Verdicts = append(d.Verdicts, v)
		}
	}
	d.Restore = admitRestore(d.Verdicts, in.Policy.Spec)
	return finish(in, d)
}

// judgeRestore decides where the restore of one selected workload stands. keep is false for a
// workload with nothing left to restore; event reports a restore rollout that just ended.
func judgeRestore(in Input, w Workload) (v Verdict, event *Event, keep bool) {
	ref := w.Ref()
	v = Verdict{Ref: ref, Status: v1alpha1.WorkloadStatus{Kind: ref.Kind, Name: ref.Name}}
	annotation, enabled := redirectOnTemplate(in.Meshes, w.Template().Annotations)
	v.Annotation = annotation
	record := findRecord(in.Policy.Status.Rollouts, ref)
	stale := record != nil && record.Generation > w.Object.GetGeneration()
	deadline := ProgressDeadline(in.Policy.Spec)
	switch {
	case w.ManagedByOperator && enabled && !stale:
		v.Status.State, v.Status.Reason, v.Status.Message = v1alpha1.WorkloadQueued, v1alpha1.StatusReasonWaitingToRestore, "the operator's annotation is removed next"
		return v, nil, true
	case record == nil:
		return v, nil, false
	}
	progress := w.Progress(record.Generation)
	switch {
	case stale:
		// The cache has not caught up with the removal: keep waiting.
	case progress.Complete:
		return v, &Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
			Message: fmt.Sprintf("Rollout of %s completed after restore", ref), Workload: &ref}, false
	case rollout.Expired(startedAt(record), in.Now, deadline):
		return v, &Event{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventRolloutFailed,
			Message: fmt.Sprintf("Rollout of %s did not finish within %ds after restore; not waiting longer", ref, int(deadline.Seconds())), Workload: &ref}, false
	}
	v.Record, v.InFlight, v.RecheckAt = record, true, deadlineOf(record, deadline)
	v.Status.State, v.Status.Reason, v.Status.Message = v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRestoring, progress.Message
	return v, nil, true
}

// admitRestore marks the workloads waiting to be restored that may start now and returns them.
// A failed rollout never pauses a restore.
func admitRestore(verdicts []Verdict, spec v1alpha1.ProbeRedirectPolicySpec) []Ref {
	inFlight := 0
	var queued []int
	for i, v := range verdicts {
		if v.InFlight {
			inFlight++
		}
		if v.Status.State == v1alpha1.WorkloadQueued {
			queued = append(queued, i)
		}
	}
	slots := rollout.Admit(len(queued), inFlight, maxConcurrent(spec), false)
	var admitted []Ref
	for _, i := range queued[:slots] {
		verdicts[i].Admitted = true
		admitted = append(admitted, verdicts[i].Ref)
	}
	return admitted
}

// anyLeftToRestore reports whether some workload still carries the operator's annotation.
func anyLeftToRestore(verdicts []Verdict) bool {
	for _, v := range verdicts {
		if v.Status.State == v1alpha1.WorkloadQueued {
			return true
		}
	}
	return false
}

// redirectOnTemplate returns the annotation of a template that turns the probe redirect on in one
// of the meshes; ok is false when none does.
func redirectOnTemplate(meshes []mesh.Mesh, annotations map[string]string) (a mesh.Annotation, ok bool) {
	for _, m := range meshes {
		if r := m.ReadRedirect(annotations); r.State == mesh.RedirectEnabled {
			return mesh.Annotation{Key: r.Annotation, Value: r.Raw}, true
		}
	}
	return mesh.Annotation{}, false
}
