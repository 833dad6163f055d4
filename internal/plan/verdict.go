package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

// judge decides the state of one selected workload and of each of its probes.
func judge(in Input, w Workload) Verdict {
	ref := w.Ref()
	v := Verdict{Ref: ref, Status: v1alpha1.WorkloadStatus{Kind: ref.Kind, Name: ref.Name}}
	if owner := managingPolicy(in.Policies, in.Policy, w); owner != nil && owner.UID != in.Policy.UID {
		v.Status.State, v.Status.Reason = v1alpha1.WorkloadConflict, v1alpha1.StatusReasonConflict
		v.Status.Message = fmt.Sprintf("older policy %q selects this workload and manages it", owner.Name)
		return v
	}
	f := observeWorkload(in, w)
	v.Needs = make([]Need, len(f.needs))
	for i, n := range f.needs {
		if n.needed {
			v.Needs[i] = Need{Reason: n.reason, Message: n.message}
		}
	}
	if f.w.Claimed > mesh.ClaimNone {
		v.Status.Mesh = f.mesh.Name() // a workload nothing puts in a mesh names none
	}
	v.Status.MTLSMode = f.w.Modes.Mode
	v.Status.Probes = probeStatuses(f.mesh, f.w.Probes, f.w.Redirect.Port, f.w.Modes, f.needs)
	v.Annotated = f.w.Redirect.State == mesh.RedirectEnabled
	v.Annotation = f.mesh.RedirectAnnotation(in.Policy.Spec)
	if f.record != nil && f.record.Generation > w.Object.GetGeneration() {
		return awaitingCache(v, f.record, f.w.Probes)
	}
	return decideWorkload(in, w, v, f)
}

// workloadFacts is what the decision on one workload reads: what its mesh says about it, and
// what the policy makes of its probes.
type workloadFacts struct {
	// mesh is the mesh that claims the workload and w what it says.
	mesh mesh.Mesh
	w    mesh.Workload
	// needs says, for each probe of w.Probes, whether it needs redirecting under the policy.
	needs     []need
	anyNeeded bool
	// record is the policy's rollout record of the workload, nil for none.
	record *v1alpha1.RolloutRecord
}

// observeWorkload asks the meshes about the workload (the one that claims it most strongly
// answers) and weighs each probe against the policy.
func observeWorkload(in Input, w Workload) workloadFacts {
	f := workloadFacts{}
	f.mesh, f.w, _ = mesh.Choose(in.Meshes, w.Template(), livePods(in, w.Ref()), in.Policy.Spec)
	f.needs = make([]need, len(f.w.Probes))
	for i, p := range f.w.Probes {
		f.needs[i] = needOf(in.Policy.Spec, p, f.w.Modes)
		f.anyNeeded = f.anyNeeded || f.needs[i].needed
	}
	f.record = findRecord(in.Policy.Status.Rollouts, w.Ref())
	return f
}

// decideWorkload settles the verdict on a workload of the policy, from the first rule that
// applies: not in the mesh, opted out, held back by the mesh, annotated (followed to its rollout),
// refused by the mesh, a hazard that stops the pods, no need, else queued.
func decideWorkload(in Input, w Workload, v Verdict, f workloadFacts) Verdict {
	mw := f.w
	if !mw.Injected {
		return leftAlone(v, mw.Probes, v1alpha1.WorkloadNotInMesh, v1alpha1.ProbeNotInMesh, mw.InjectionReason,
			"no sidecar is injected, so the kubelet reaches the app directly")
	}
	if mw.Redirect.State == mesh.RedirectDisabled {
		return leftAlone(v, mw.Probes, v1alpha1.WorkloadOptedOut, v1alpha1.ProbeOptedOut, v1alpha1.StatusReasonRewriteDisabledByUser,
			fmt.Sprintf("%s is %q on the pod template; the operator leaves it", mw.Redirect.Annotation, mw.Redirect.Raw))
	}
	for _, o := range mw.Blocked {
		if !o.IfNeeded || f.anyNeeded {
			return leftAlone(v, mw.Probes, o.State, o.ProbeState, o.Reason, o.Message)
		}
	}
	switch {
	case mw.RewrittenInTemplate > 0:
		v = annotated(in, w, v, f, "the template itself (injected before it was applied)")
		if v.Status.State == v1alpha1.WorkloadRedirected {
			v.Status.Reason = v1alpha1.StatusReasonRewrittenInTemplate
		}
		return v
	case v.Annotated:
		by := "the operator"
		if !w.ManagedByOperator {
			by = "its owner"
		}
		return annotated(in, w, v, f, by)
	case mw.RedirectedByDefault && f.anyNeeded:
		v = annotated(in, w, v, f, "nobody")
		if v.Status.State == v1alpha1.WorkloadRedirected {
			v.Status.Reason = v1alpha1.StatusReasonRedirectedByMeshDefault
			v.Status.Message = fmt.Sprintf("%s redirects the probes by default; verified on live pods, nothing written", f.mesh.Name())
		}
		return v
	case f.anyNeeded && mw.Refused != nil:
		return leftAlone(v, mw.Probes, mw.Refused.State, mw.Refused.ProbeState, mw.Refused.Reason, mw.Refused.Message)
	case hasHazard(mw.Probes, v1alpha1.StatusReasonStartupProbeBeforeSidecar):
		// The rewrite itself, not the operator's annotation, is what breaks these pods, so a
		// workload that needs nothing is reported too.
		i := slices.IndexFunc(mw.Probes, func(p probes.Probe) bool { return p.Hazard == v1alpha1.StatusReasonStartupProbeBeforeSidecar })
		return leftAloneForHazard(v, mw.Probes, f.needs, mw.Probes[i],
			"wherever the mesh rewrites probes (its default, or the annotation the operator would add) the pods never start; the operator does not annotate the workload")
	case !f.anyNeeded:
		v.Status.State, v.Status.Reason = v1alpha1.WorkloadNotNeeded, v1alpha1.StatusReasonNoProbeNeedsRedirect
		v.Status.Message = "no probe needs redirecting"
		return v
	default:
		return unannotated(v, mw.Probes, f.needs, suspended(in.Policy.Spec))
	}
}

// awaitingCache is the verdict on a workload whose cached copy predates the annotation this
// policy applied: it is rolling.
func awaitingCache(v Verdict, record *v1alpha1.RolloutRecord, analysed []probes.Probe) Verdict {
	v.Annotated, v.InFlight, v.Record = true, true, record
	v.Status.State, v.Status.Reason = v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRolloutStarted
	v.Status.Message = "annotated by the operator; waiting for the workload to show it"
	setRedirectable(v.Status.Probes, analysed, v1alpha1.ProbePendingRollout, v1alpha1.StatusReasonRolloutStarted, "no pod from the annotated template yet")
	return v
}

// leftAlone is the verdict on a workload the operator does not touch for the given reason; every
// probe the mesh could rewrite takes the same state and reason.
func leftAlone(v Verdict, analysed []probes.Probe, state v1alpha1.WorkloadState, probeState v1alpha1.ProbeState, reason v1alpha1.StatusReason, message string) Verdict {
	v.Status.State, v.Status.Reason, v.Status.Message = state, reason, message
	setRedirectable(v.Status.Probes, analysed, probeState, reason, message)
	return v
}

// unannotated is the verdict on a workload in the mesh with probes that need redirecting and no
// rewrite annotation yet: a hazard leaves it untouched, otherwise it is queued (or suspended).
func unannotated(v Verdict, analysed []probes.Probe, needs []need, suspended bool) Verdict {
	if i := firstHazard(analysed); i >= 0 {
		return leftAloneForHazard(v, analysed, needs, analysed[i], "the operator does not annotate the workload")
	}
	state, reason, message := v1alpha1.WorkloadQueued, v1alpha1.StatusReasonQueued, "waiting to be annotated"
	if suspended {
		state, reason, message = v1alpha1.WorkloadSuspended, v1alpha1.StatusReasonSuspended, "the policy is suspended; nothing is changed"
	}
	v.Status.State, v.Status.Reason, v.Status.Message = state, reason, message
	for j := range analysed {
		if needs[j].needed {
			setProbe(&v.Status.Probes[j], v1alpha1.ProbePendingRollout, reason, needs[j].message)
		}
	}
	return v
}

// annotated is the verdict on a workload whose template enables the rewrite: it follows the
// rollout, verifies the rewrite on the live pods, and reports hazards someone else enabled.
func annotated(in Input, w Workload, v Verdict, f workloadFacts, by string) Verdict {
	record, analysed := f.record, f.w.Probes
	var minGeneration int64
	if record != nil {
		minGeneration = record.Generation
	}
	progress := w.Progress(minGeneration)
	verified := verifyOnPods(v.Status.Probes, analysed, f.w, progress.Complete)
	extra := liveOnlyProbes(in.Policy.Spec, f.mesh, analysed, f.w)
	v.Status.Probes = append(v.Status.Probes, extra.statuses...)
	v.Needs = append(v.Needs, extra.needs...)
	if record == nil && w.ManagedByOperator && !progress.Complete && verified != v1alpha1.ProbeRewritten {
		// The operator annotated this workload, its pods are not redirected yet, and no record
		// says so: the operator stopped between applying the annotation and writing the status.
		// Adopt the rollout, its deadline counted from now, so that it holds a slot and can fail.
		// (A rollout someone starts on a workload already redirected has rewritten pods.)
		started := metav1.NewTime(in.Now.Truncate(time.Second))
		record = &v1alpha1.RolloutRecord{Kind: w.Ref().Kind, Name: w.Ref().Name, Generation: max(w.Object.GetGeneration(), 1), StartedAt: &started}
	}
	v = followRollout(v, record, progress, worse(verified, extra.worst), by, in.Now, ProgressDeadline(in.Policy.Spec))
	if v.Status.State == v1alpha1.WorkloadRolloutFailed {
		return v
	}
	if v.Status.Reason == v1alpha1.StatusReasonNotRewrittenByMesh && verified != v1alpha1.ProbeNotRewritten {
		// Every probe left unrewritten belongs to a container the template does not have.
		v.Status.Reason = v1alpha1.StatusReasonAddedAfterInjection
		v.Status.Message = fmt.Sprintf("container(s) %s exist only on the live pods: a mutating webhook added them after %s's injector ran, so their probes were not rewritten; "+
			"%s, or put the containers in the template", strings.Join(extra.unrewritten, ", "), f.mesh.Name(), f.w.LateContainerAdvice)
	}
	// Someone else enabled the rewrite on a template whose probes it breaks: say so, naming the
	// first hazard.
	for i := len(analysed) - 1; i >= 0; i-- {
		p := analysed[i]
		if p.Hazard == "" {
			continue
		}
		setProbe(&v.Status.Probes[i], v1alpha1.ProbeUnsupported, p.Hazard, p.HazardMessage)
		v.Status.State, v.Status.Reason = v1alpha1.WorkloadUnsupported, p.Hazard
		v.Status.Message = fmt.Sprintf("the rewrite is enabled, but it breaks container %q %s probe: %s", p.Container, strings.ToLower(string(p.Kind)), p.HazardMessage)
	}
	return v
}

// followRollout sets the state of an annotated workload from its rollout's progress, the rollout
// record this policy keeps for it (nil for none), and the verified state of its probes; by says
// who enabled the rewrite, for the message.
func followRollout(v Verdict, record *v1alpha1.RolloutRecord, progress rollout.Progress, verified v1alpha1.ProbeState,
	by string, now time.Time, deadline time.Duration) Verdict {
	s := &v.Status
	switch {
	case record != nil && !progress.Complete && rollout.Expired(startedAt(record), now, deadline):
		v.Record = record
		s.State, s.Reason = v1alpha1.WorkloadRolloutFailed, v1alpha1.StatusReasonProgressDeadlineExceeded
		s.Message = fmt.Sprintf("rollout did not finish within %s: %s", deadline, progress.Message)
	case progress.Failed && record != nil:
		v.Record = record
		s.State, s.Reason = v1alpha1.WorkloadRolloutFailed, v1alpha1.StatusReasonProgressDeadlineExceeded
		s.Message = progress.Message
	case progress.Blocked != "" && !progress.Complete:
		s.State, s.Reason = v1alpha1.WorkloadManualRolloutRequired, progress.Blocked
		s.Message = "the template is annotated, but new pods come only when a person acts: " + progress.Message
	case !progress.Complete:
		s.State, s.Reason = v1alpha1.WorkloadRolling, v1alpha1.StatusReasonRolloutInProgress
		s.Message = progress.Message
		// Only rollouts this policy started count against maxConcurrent and have a deadline;
		// a rollout someone else started (say, a new image) is theirs.
		if record != nil {
			v.Record, v.InFlight, v.RecheckAt = record, true, deadlineOf(record, deadline)
		}
	default:
		v.RolledOut, v.RolloutCompleted = true, record != nil
		switch verified {
		case v1alpha1.ProbeRewritten:
			s.State, s.Reason = v1alpha1.WorkloadRedirected, v1alpha1.StatusReasonProbesRewritten
			s.Message = "annotated by " + by + "; probes verified on live pods"
		case v1alpha1.ProbePendingRollout:
			// A complete rollout that leaves old pods is a partitioned StatefulSet or similar:
			// those pods change only when a person moves the partition or deletes them.
			s.State, s.Reason = v1alpha1.WorkloadManualRolloutRequired, v1alpha1.StatusReasonPodsOnOldTemplate
			s.Message = "the rollout is complete, but some pods predate the annotation (a partition, or pods kept on purpose)"
		default:
			s.State, s.Reason = v1alpha1.WorkloadUnsupported, v1alpha1.StatusReasonNotRewrittenByMesh
			s.Message = "pods come from the annotated template, yet the mesh did not rewrite their probes (see the probes)"
		}
	}
	return v
}

// leftAloneForHazard is the verdict on a workload the operator does not annotate because
// redirecting probe p (the first hazard) would break it; consequence ends the message.
func leftAloneForHazard(v Verdict, analysed []probes.Probe, needs []need, p probes.Probe, consequence string) Verdict {
	v.Status.State, v.Status.Reason = v1alpha1.WorkloadUnsupported, p.Hazard
	v.Status.Message = fmt.Sprintf("container %q %s probe: %s; %s", p.Container, strings.ToLower(string(p.Kind)), p.HazardMessage, consequence)
	for j, q := range analysed {
		switch {
		case q.Hazard != "":
			setProbe(&v.Status.Probes[j], v1alpha1.ProbeUnsupported, q.Hazard, q.HazardMessage)
		case needs[j].needed:
			setProbe(&v.Status.Probes[j], v1alpha1.ProbePendingRollout, v1alpha1.StatusReasonWorkloadUnsupported, "another probe of the workload cannot be redirected safely")
		}
	}
	return v
}

func hasHazard(analysed []probes.Probe, hazard v1alpha1.StatusReason) bool {
	return slices.ContainsFunc(analysed, func(p probes.Probe) bool { return p.Hazard == hazard })
}

func firstHazard(analysed []probes.Probe) int {
	for i, p := range analysed {
		if p.Hazard != "" {
			return i
		}
	}
	return -1
}

// setRedirectable sets the state of every probe the mesh could rewrite (all but exec).
func setRedirectable(statuses []v1alpha1.ProbeStatus, analysed []probes.Probe, state v1alpha1.ProbeState, reason v1alpha1.StatusReason, message string) {
	for i, p := range analysed {
		if p.Handler != v1alpha1.HandlerExec {
			setProbe(&statuses[i], state, reason, message)
		}
	}
}

func setProbe(ps *v1alpha1.ProbeStatus, state v1alpha1.ProbeState, reason v1alpha1.StatusReason, message string) {
	ps.State, ps.Reason, ps.Message = state, reason, truncate(message, v1alpha1.MaxMessageLength)
}

// startedAt is when the operator started the recorded rollout; zero (never expires) when unknown.
func startedAt(record *v1alpha1.RolloutRecord) time.Time {
	if record.StartedAt == nil {
		return time.Time{}
	}
	return record.StartedAt.Time
}

// deadlineOf is when the recorded rollout passes its deadline; zero when the start is unknown.
func deadlineOf(record *v1alpha1.RolloutRecord, deadline time.Duration) time.Time {
	if record.StartedAt == nil {
		return time.Time{}
	}
	return record.StartedAt.Add(deadline)
}
