package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/mtls"
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
	v.Status.MTLSMode = f.modes.Mode
	v.Status.Probes = probeStatuses(f.analysed, f.settings.StatusPort, f.modes, f.needs)
	v.Annotated = f.settings.Rewrite == istiomesh.RewriteEnabled
	if f.record != nil && f.record.Generation > w.Object.GetGeneration() {
		return awaitingCache(v, f.record, f.analysed)
	}
	return decideWorkload(in, w, v, f)
}

// workloadFacts are what the verdict on one workload is decided from.
type workloadFacts struct {
	settings istiomesh.Template
	pods     podsOfWorkload
	istio    istiomesh.IstioVersion
	modes    mtls.Workload
	analysed []probes.Probe
	// rewrittenInTemplate counts the probes the template already holds rewritten (kube-inject).
	rewrittenInTemplate int
	needs               []need
	anyNeeded           bool
	record              *v1alpha1.RolloutRecord
}

// observeWorkload reads the facts about a workload: its template's mesh settings as its Istio
// version reads them, its live pods, its mTLS modes, and its probes with their needs.
func observeWorkload(in Input, w Workload) workloadFacts {
	template := w.Template()
	f := workloadFacts{pods: livePods(in, w.Ref())}
	f.istio = istioOf(in.Istio, f.pods)
	f.settings = istiomesh.ReadTemplate(in.NamespaceLabels, template, in.Config.StatusPort, f.istio)
	if !f.istio.Known() {
		// The injection rules differ by version: with none to go by, the live pods tell.
		if injected, found := sidecarOnPods(f.pods); found {
			f.settings.Injected, f.settings.InjectionReason = injected, v1alpha1.StatusReasonNoSidecarOnLivePods
			if injected {
				f.settings.InjectionReason = v1alpha1.StatusReasonSidecarOnLivePods
			}
		}
	}
	f.modes = in.MTLS.ForWorkload(in.Policy.Namespace, template.Labels)
	// A template injected before it was applied is judged by the probes its env keeps.
	f.analysed, f.rewrittenInTemplate = istiomesh.Originals(&template.Spec, f.settings.StatusPort)
	if f.rewrittenInTemplate > 0 && !template.Spec.HostNetwork {
		f.settings.Injected = true
		// Every pod comes from the injected template: none is "old".
		f.pods = podsOfWorkload{current: slices.Concat(f.pods.current, f.pods.old)}
	}
	native := nativeSidecar(f.pods, f.settings)
	if inTemplate, found := istiomesh.NativeSidecarOnPod(&template.Spec); found {
		native = inTemplate // injected before it was applied: the template says where istio-proxy is
	}
	istiomesh.MarkStartupBeforeProxy(f.analysed, native)
	f.needs = make([]need, len(f.analysed))
	for i, p := range f.analysed {
		f.needs[i] = needOf(in.Policy.Spec, p, f.modes)
		f.anyNeeded = f.anyNeeded || f.needs[i].needed
	}
	f.record = findRecord(in.Policy.Status.Rollouts, w.Ref())
	return f
}

// decideWorkload picks the verdict from the facts: the first rule that applies decides.
func decideWorkload(in Input, w Workload, v Verdict, f workloadFacts) Verdict {
	s := f.settings
	switch {
	case !s.Injected:
		return leftAlone(v, f.analysed, v1alpha1.WorkloadNotInMesh, v1alpha1.ProbeNotInMesh, s.InjectionReason,
			"no sidecar is injected, so the kubelet reaches the app directly")
	case s.Rewrite == istiomesh.RewriteDisabled:
		return leftAlone(v, f.analysed, v1alpha1.WorkloadOptedOut, v1alpha1.ProbeOptedOut, v1alpha1.StatusReasonRewriteDisabledByUser,
			fmt.Sprintf("%s is %q on the pod template; the operator leaves it", istiomesh.RewriteAnnotation, s.RewriteRaw))
	case s.Rewrite == istiomesh.RewriteInvalid && f.anyNeeded:
		return leftAlone(v, f.analysed, v1alpha1.WorkloadUnsupported, v1alpha1.ProbeUnsupported, v1alpha1.StatusReasonInvalidRewriteAnnotation,
			fmt.Sprintf("%s is %q, which is not a boolean: Istio ignores it and uses the mesh default; the operator does not overwrite it", istiomesh.RewriteAnnotation, s.RewriteRaw))
	case s.StatusPortErr != nil:
		return leftAlone(v, f.analysed, v1alpha1.WorkloadUnsupported, v1alpha1.ProbeUnsupported, v1alpha1.StatusReasonInvalidStatusPort,
			s.StatusPortErr.Error())
	case slices.ContainsFunc(s.InjectionTemplates, isProxyless):
		return leftAlone(v, f.analysed, v1alpha1.WorkloadNotInMesh, v1alpha1.ProbeNotInMesh, v1alpha1.StatusReasonProxylessTemplate,
			fmt.Sprintf("%s is %q: Istio's proxyless gRPC template adds no Envoy, so nothing intercepts the kubelet's probes, and it turns the probe rewrite off itself",
				istiomesh.InjectionTemplatesAnnotation, strings.Join(s.InjectionTemplates, ",")))
	case f.rewrittenInTemplate > 0:
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
	case f.anyNeeded && slices.ContainsFunc(s.InjectionTemplates, isUnknownTemplate):
		return leftAlone(v, f.analysed, v1alpha1.WorkloadUnsupported, v1alpha1.ProbeUnsupported, v1alpha1.StatusReasonUnknownInjectionTemplate,
			fmt.Sprintf("%s is %q, which names an injection template that is not Istio's own; the operator cannot tell whether it rewrites probes and does not annotate the workload",
				istiomesh.InjectionTemplatesAnnotation, strings.Join(s.InjectionTemplates, ",")))
	case hasHazard(f.analysed, v1alpha1.StatusReasonStartupProbeBeforeSidecar):
		// The mesh's own default rewrites probes in stock Istio, so this breaks with or without
		// the operator, and whether or not a probe needs redirecting.
		i := slices.IndexFunc(f.analysed, func(p probes.Probe) bool { return p.Hazard == v1alpha1.StatusReasonStartupProbeBeforeSidecar })
		return leftAloneForHazard(v, f.analysed, f.needs, f.analysed[i],
			"wherever Istio rewrites probes (its default, or the annotation the operator would add) the pods never start; the operator does not annotate the workload")
	case !f.anyNeeded:
		v.Status.State, v.Status.Reason = v1alpha1.WorkloadNotNeeded, v1alpha1.StatusReasonNoProbeNeedsRedirect
		v.Status.Message = "no probe needs redirecting"
		return v
	default:
		return unannotated(v, f.analysed, f.needs, suspended(in.Policy.Spec))
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
	record, analysed := f.record, f.analysed
	var minGeneration int64
	if record != nil {
		minGeneration = record.Generation
	}
	progress := w.Progress(minGeneration)
	verifications := verifyPods(f.pods, in.Config.StatusPort)
	verified := verifyOnPods(v.Status.Probes, analysed, f.pods, verifications, progress.Complete, f.istio)
	extra := liveOnlyProbes(in.Policy.Spec, analysed, f.pods, verifications, in.Config.StatusPort, f.modes)
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
		v.Status.Message = fmt.Sprintf("container(s) %s exist only on the live pods: a mutating webhook added them after Istio's injector ran, so their probes were not rewritten; "+
			"set Istio's sidecarInjectorWebhook.reinvocationPolicy to IfNeeded, or put the containers in the template", strings.Join(extra.unrewritten, ", "))
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

// nativeSidecar says whether istio-proxy runs as a native sidecar in the workload's pods: the
// live pods are the best evidence, then the template's annotation, then the mesh default of the
// Istio version.
func nativeSidecar(pods podsOfWorkload, settings istiomesh.Template) bool {
	for _, pod := range slices.Concat(pods.current, pods.old) {
		if native, found := istiomesh.NativeSidecarOnPod(&pod.Spec); found {
			return native
		}
	}
	return settings.NativeSidecar
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

// istioOf is the Istio version of a workload: the newest istio-proxy image of its live pods when
// they show one (newest, so that the answer does not depend on the pods' order), else the
// namespace's.
func istioOf(namespace istiomesh.IstioVersion, pods podsOfWorkload) istiomesh.IstioVersion {
	if v := istiomesh.NewestOnPods(slices.Concat(pods.current, pods.old)); v.Known() {
		return v
	}
	return namespace
}

// sidecarOnPods reports whether the workload's live pods have istio-proxy; found is false when
// it has no live pods.
func sidecarOnPods(pods podsOfWorkload) (injected, found bool) {
	for _, pod := range slices.Concat(pods.current, pods.old) {
		found = true
		if _, has := istiomesh.NativeSidecarOnPod(&pod.Spec); has {
			return true, true
		}
	}
	return false, found
}

func isProxyless(template string) bool {
	return slices.Contains(istiomesh.ProxylessTemplates, template)
}

// isUnknownTemplate reports whether an injection template is none of Istio's own.
func isUnknownTemplate(template string) bool {
	return !isProxyless(template) && !slices.Contains(istiomesh.ProbeRewritingTemplates, template)
}
