package plan

import (
	"fmt"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/mtls"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

// Bounds of the status lists; the summary keeps the exact totals.
const (
	MaxWorkloadEntries     = 100
	MaxUnhealthyPodEntries = 50
	maxMessageLength       = 1024
)

// Config holds the operator-wide settings the decisions depend on.
type Config struct {
	// StatusPort is the mesh's default agent status port (Istio: 15020).
	StatusPort int32
	// UnhealthyWindow is how long an Unhealthy event keeps a pod in the report.
	UnhealthyWindow time.Duration
}

// Input is everything the controller observed for one policy. It is read, never changed.
type Input struct {
	Policy *v1alpha1.ProbeRedirectPolicy
	// Policies are all ProbeRedirectPolicies in the namespace; the oldest one that selects a
	// workload manages it.
	Policies        []*v1alpha1.ProbeRedirectPolicy
	NamespaceLabels map[string]string
	// Workloads are the Deployments, StatefulSets and DaemonSets of the namespace.
	Workloads []Workload
	// Pods are the pods of the namespace.
	Pods []*corev1.Pod
	// Events are the namespace's kubelet Unhealthy events.
	Events []corev1.Event
	MTLS   *mtls.Resolver
	Now    time.Time
	Config Config
}

// Event is a Kubernetes Event to record on the policy.
type Event struct {
	Type    string
	Reason  string
	Message string
}

// ApplyResult is what happened when the controller changed one workload's template.
type ApplyResult struct {
	// Generation is the workload's metadata.generation the change produced.
	Generation int64
	Err        error
}

// Decision is what the policy should do now. The controller carries out Annotate (or Restore),
// then calls Complete with the results to get the status and Events.
type Decision struct {
	// Annotate lists the workloads whose template gets the rewrite annotation now.
	Annotate []Ref
	// Restore lists the workloads whose operator-added annotation is removed now (deletion with Restore).
	Restore []Ref

	in          Input
	restoring   bool
	evaluations []*evaluation
	invalid     error
	events      []Event
	requeue     time.Duration
}

// evaluation is the verdict on one selected workload.
type evaluation struct {
	ref    Ref
	status v1alpha1.WorkloadStatus
	record *v1alpha1.RolloutRecord
	// annotated: the template enables the rewrite.
	annotated bool
	// rolledOut: annotated and its rollout is complete.
	rolledOut bool
	// inFlight: a rollout this policy started (or restores) is in progress.
	inFlight bool
	// admitted: Annotate or Restore carries this workload now.
	admitted bool
}

// Decide evaluates every workload the policy selects and picks those to annotate now.
func Decide(in Input) *Decision {
	in = withDefaults(in)
	d := &Decision{in: in}
	selector, err := selectorOf(in.Policy)
	if err != nil {
		d.invalid = err
		return d
	}
	spec := in.Policy.Spec
	var candidates []*evaluation
	for _, w := range sortedWorkloads(in.Workloads) {
		if !selects(in.Policy, selector, w) {
			continue
		}
		e := d.evaluate(w)
		d.evaluations = append(d.evaluations, e)
		if e.status.State == v1alpha1.WorkloadQueued {
			candidates = append(candidates, e)
		}
	}
	failed, inFlight := 0, 0
	for _, e := range d.evaluations {
		if e.status.State == v1alpha1.WorkloadRolloutFailed {
			failed++
		}
		if e.inFlight {
			inFlight++
		}
	}
	paused := failed > 0 && pauseOnFailure(spec)
	slots := rollout.Admit(len(candidates), inFlight, maxConcurrent(spec), paused)
	for i, e := range candidates {
		switch {
		case i < slots:
			e.admitted = true
			d.Annotate = append(d.Annotate, e.ref)
		case paused:
			e.status.Reason = "PausedAfterFailure"
			e.status.Message = fmt.Sprintf("%d rollout(s) failed and rollout.pauseOnFailure is true", failed)
		default:
			e.status.Reason = "WaitingForRolloutSlot"
			e.status.Message = fmt.Sprintf("%d of %d concurrent rollout(s) in progress", inFlight+slots, maxConcurrent(spec))
		}
	}
	return d
}

// evaluate decides the state of one selected workload and of each of its probes.
func (d *Decision) evaluate(w Workload) *evaluation {
	in := d.in
	ref := w.Ref()
	template := w.Template()
	e := &evaluation{ref: ref, status: v1alpha1.WorkloadStatus{Kind: ref.Kind, Name: ref.Name}}

	if owner := managingPolicy(in.Policies, in.Policy, w); owner != nil && owner.UID != in.Policy.UID {
		e.status.State = v1alpha1.WorkloadConflict
		e.status.Reason = v1alpha1.ReasonConflict
		e.status.Message = fmt.Sprintf("older policy %q selects this workload and manages it", owner.Name)
		return e
	}

	modes := in.MTLS.ForWorkload(in.Policy.Namespace, template.Labels)
	e.status.MTLSMode = modes.Mode
	statusPort, statusPortErr := mesh.StatusPort(template.Annotations, in.Config.StatusPort)
	analysed := probes.Analyze(&template.Spec, statusPort)
	setting, raw := mesh.ReadRewriteSetting(template.Annotations)
	e.annotated = setting == mesh.RewriteEnabled
	e.record = findRecord(in.Policy.Status.Rollouts, ref)

	needed := make([]need, len(analysed))
	anyNeeded := false
	for i, p := range analysed {
		needed[i] = needOf(in.Policy.Spec, p, modes)
		anyNeeded = anyNeeded || needed[i].needed
	}
	// base lists every probe with its need; the branches below refine the states.
	base := make([]v1alpha1.ProbeStatus, len(analysed))
	for i, p := range analysed {
		base[i] = probeStatus(p, statusPort, modes, needed[i])
	}
	e.status.Probes = base

	if e.record != nil && e.record.Generation > w.Object().GetGeneration() {
		// The cache has not caught up with the annotation this policy applied: it is rolling.
		e.annotated, e.inFlight = true, true
		e.status.State, e.status.Reason = v1alpha1.WorkloadRolling, "RolloutStarted"
		e.status.Message = "annotated by the operator; waiting for the workload to show it"
		for i, p := range analysed {
			if p.Handler != v1alpha1.HandlerExec {
				setProbe(&e.status.Probes[i], v1alpha1.ProbePendingRollout, "RolloutStarted", "no pod from the annotated template yet")
			}
		}
		return e
	}

	injected, injectionReason := mesh.Injection(in.NamespaceLabels, template.Labels, template.Annotations)
	if injected && template.Spec.HostNetwork {
		// Istio's injector never adds a sidecar to host-network pods.
		injected, injectionReason = false, mesh.ReasonHostNetwork
	}
	switch {
	case !injected:
		e.status.State, e.status.Reason = v1alpha1.WorkloadNotInMesh, injectionReason
		e.status.Message = "no sidecar is injected, so the kubelet reaches the app directly"
		setRedirectableStates(e, analysed, v1alpha1.ProbeNotInMesh, injectionReason)
		e.record = nil
	case setting == mesh.RewriteDisabled:
		e.status.State, e.status.Reason = v1alpha1.WorkloadOptedOut, "RewriteDisabledByUser"
		e.status.Message = fmt.Sprintf("%s is %q on the pod template; the operator leaves it", mesh.RewriteAnnotation, raw)
		setRedirectableStates(e, analysed, v1alpha1.ProbeOptedOut, "RewriteDisabledByUser")
		e.record = nil
	case setting == mesh.RewriteInvalid && anyNeeded:
		e.status.State, e.status.Reason = v1alpha1.WorkloadUnsupported, "InvalidRewriteAnnotation"
		e.status.Message = fmt.Sprintf("%s is %q, which is not a boolean: Istio ignores it and uses the mesh default; the operator does not overwrite it", mesh.RewriteAnnotation, raw)
		setRedirectableStates(e, analysed, v1alpha1.ProbeUnsupported, "InvalidRewriteAnnotation")
		e.record = nil
	case statusPortErr != nil:
		e.status.State, e.status.Reason = v1alpha1.WorkloadUnsupported, "InvalidStatusPort"
		e.status.Message = statusPortErr.Error()
		setRedirectableStates(e, analysed, v1alpha1.ProbeUnsupported, "InvalidStatusPort")
		e.record = nil
	case e.annotated:
		d.evaluateAnnotated(e, w, analysed, statusPort)
	case !anyNeeded:
		e.status.State, e.status.Reason = v1alpha1.WorkloadNotNeeded, "NoProbeNeedsRedirect"
		e.status.Message = "no probe needs redirecting"
		e.record = nil
	default:
		d.evaluateUnannotated(e, analysed, needed)
	}
	return e
}

// evaluateUnannotated handles a workload in the mesh with probes that need redirecting and no
// rewrite annotation yet.
func (d *Decision) evaluateUnannotated(e *evaluation, analysed []probes.Probe, needed []need) {
	e.record = nil
	for i, p := range analysed {
		if p.Hazard != "" {
			e.status.State, e.status.Reason = v1alpha1.WorkloadUnsupported, p.Hazard
			e.status.Message = fmt.Sprintf("container %q %s probe: %s; the operator does not annotate the workload", p.Container, lower(p.Kind), p.HazardMessage)
			for j, q := range analysed {
				switch {
				case q.Hazard != "":
					setProbe(&e.status.Probes[j], v1alpha1.ProbeUnsupported, q.Hazard, q.HazardMessage)
				case needed[j].needed:
					setProbe(&e.status.Probes[j], v1alpha1.ProbePendingRollout, "WorkloadUnsupported", "another probe of the workload cannot be redirected safely")
				}
			}
			_ = i
			return
		}
	}
	state, reason, message := v1alpha1.WorkloadQueued, "Queued", "waiting to be annotated"
	if d.in.Policy.Spec.Suspend {
		state, reason, message = v1alpha1.WorkloadSuspended, v1alpha1.ReasonSuspended, "the policy is suspended; nothing is changed"
	}
	e.status.State, e.status.Reason, e.status.Message = state, reason, message
	for j := range analysed {
		if needed[j].needed {
			setProbe(&e.status.Probes[j], v1alpha1.ProbePendingRollout, reason, needed[j].message)
		}
	}
}

// evaluateAnnotated handles a workload whose template enables the rewrite: it follows the rollout
// and verifies the rewrite on the live pods.
func (d *Decision) evaluateAnnotated(e *evaluation, w Workload, analysed []probes.Probe, statusPort int32) {
	in := d.in
	var minGeneration int64
	if e.record != nil {
		minGeneration = e.record.Generation
	}
	progress := w.Progress(minGeneration)
	deadline := time.Duration(progressDeadline(in.Policy.Spec)) * time.Second
	verified := d.verify(e, w, analysed, progress.Complete)
	by := "the operator"
	if !w.ManagedByOperator {
		by = "its owner"
	}
	switch {
	case e.record != nil && !progress.Complete && rollout.Expired(e.record.StartedAt.Time, in.Now, deadline):
		e.status.State, e.status.Reason = v1alpha1.WorkloadRolloutFailed, "ProgressDeadlineExceeded"
		e.status.Message = fmt.Sprintf("rollout did not finish within %s: %s", deadline, progress.Message)
	case progress.Failed && e.record != nil:
		e.status.State, e.status.Reason = v1alpha1.WorkloadRolloutFailed, "ProgressDeadlineExceeded"
		e.status.Message = progress.Message
	case progress.Blocked != "" && !progress.Complete:
		e.status.State, e.status.Reason = v1alpha1.WorkloadManualRolloutRequired, progress.Blocked
		e.status.Message = "the template is annotated, but new pods come only when a person acts: " + progress.Message
		e.record = nil
	case !progress.Complete:
		e.status.State, e.status.Reason = v1alpha1.WorkloadRolling, "RolloutInProgress"
		e.status.Message = progress.Message
		// Only rollouts this policy started count against maxConcurrent and have a deadline;
		// a rollout someone else started (say, a new image) is theirs.
		e.inFlight = e.record != nil
		if e.record != nil {
			d.requeueAt(e.record.StartedAt.Add(deadline))
		}
	default:
		e.rolledOut = true
		if e.record != nil {
			d.events = append(d.events, Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
				Message: fmt.Sprintf("Rollout of %s completed", e.ref)})
			e.record = nil
		}
		switch verified {
		case v1alpha1.ProbeRewritten:
			e.status.State, e.status.Reason = v1alpha1.WorkloadRedirected, "ProbesRewritten"
			e.status.Message = "annotated by " + by + "; probes verified on live pods"
		case v1alpha1.ProbePendingRollout:
			// A complete rollout that leaves old pods is a partitioned StatefulSet or similar:
			// those pods change only when a person moves the partition or deletes them.
			e.status.State, e.status.Reason = v1alpha1.WorkloadManualRolloutRequired, "PodsOnOldTemplate"
			e.status.Message = "the rollout is complete, but some pods predate the annotation (a partition, or pods kept on purpose)"
		default:
			e.status.State, e.status.Reason = v1alpha1.WorkloadUnsupported, "NotRewrittenByMesh"
			e.status.Message = "pods come from the annotated template, yet the mesh did not rewrite their probes (see the probes)"
		}
	}
	// Someone else enabled the rewrite on a template whose probes it breaks: say so.
	if e.status.State != v1alpha1.WorkloadRolloutFailed {
		for i, p := range analysed {
			if p.Hazard == "" {
				continue
			}
			setProbe(&e.status.Probes[i], v1alpha1.ProbeUnsupported, p.Hazard, p.HazardMessage)
			e.status.State, e.status.Reason = v1alpha1.WorkloadUnsupported, p.Hazard
			e.status.Message = fmt.Sprintf("the rewrite is enabled, but it breaks container %q %s probe: %s", p.Container, lower(p.Kind), p.HazardMessage)
		}
	}
}

// verify sets each probe's state from the workload's live pods and returns the worst state among
// the redirectable probes (Rewritten, PendingRollout or NotRewritten).
func (d *Decision) verify(e *evaluation, w Workload, analysed []probes.Probe, rolledOut bool) v1alpha1.ProbeState {
	var current, old []*corev1.Pod
	for _, pod := range d.in.Pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if ref, ok := WorkloadOfPod(pod); !ok || ref != e.ref {
			continue
		}
		if setting, _ := mesh.ReadRewriteSetting(pod.Annotations); setting == mesh.RewriteEnabled {
			current = append(current, pod)
		} else {
			old = append(old, pod)
		}
	}
	verifications := make([]probes.PodVerification, len(current))
	for i, pod := range current {
		port, _ := mesh.StatusPort(pod.Annotations, d.in.Config.StatusPort)
		verifications[i] = probes.VerifyPod(&pod.Spec, port)
	}
	worst := v1alpha1.ProbeRewritten
	for i, p := range analysed {
		if p.Handler == v1alpha1.HandlerExec {
			continue
		}
		ps := &e.status.Probes[i]
		switch {
		case len(old) > 0:
			setProbe(ps, v1alpha1.ProbePendingRollout, "PodsOnOldTemplate",
				fmt.Sprintf("%d of %d pods predate the annotation", len(old), len(old)+len(current)))
		case len(current) == 0 && !rolledOut:
			setProbe(ps, v1alpha1.ProbePendingRollout, "RolloutInProgress", "no pod from the annotated template yet")
		case len(current) == 0:
			setProbe(ps, v1alpha1.ProbeRewritten, "TemplateAnnotated", "no pods to verify; new pods get the rewrite")
		default:
			setProbe(ps, v1alpha1.ProbeRewritten, "VerifiedOnPods", fmt.Sprintf("verified on %d pod(s)", len(current)))
			for j, v := range verifications {
				pv, ok := v.Probes[p.Key()]
				if ok && pv.Rewritten {
					continue
				}
				reason := "ProbeNotRewritten"
				if ok {
					reason = pv.Reason
				}
				setProbe(ps, v1alpha1.ProbeNotRewritten, reason, fmt.Sprintf("pod %s: probe not rewritten (%s)", current[j].Name, reason))
				break
			}
		}
		worst = worse(worst, ps.State)
	}
	return worst
}

func worse(a, b v1alpha1.ProbeState) v1alpha1.ProbeState {
	rank := map[v1alpha1.ProbeState]int{v1alpha1.ProbeRewritten: 0, v1alpha1.ProbePendingRollout: 1, v1alpha1.ProbeNotRewritten: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// need says whether one probe needs redirecting under the policy, and why.
type need struct {
	needed  bool
	reason  string
	message string
}

func needOf(spec v1alpha1.ProbeRedirectPolicySpec, p probes.Probe, modes mtls.Workload) need {
	if p.Handler == v1alpha1.HandlerExec {
		return need{reason: "ExecProbe", message: "exec probes run inside the container; the sidecar does not intercept them"}
	}
	if !slices.Contains(probeTypes(spec), v1alpha1.ProbeType(p.Handler)) {
		return need{reason: "ProbeTypeNotSelected", message: fmt.Sprintf("spec.probeTypes does not include %s", p.Handler)}
	}
	if spec.Trigger == v1alpha1.TriggerAlways {
		return need{needed: true, reason: "TriggerAlways", message: "spec.trigger is Always"}
	}
	if p.Handler == v1alpha1.HandlerTCP {
		return need{needed: true, reason: "TCPPassesFalsely", message: "the sidecar accepts every TCP connection, so the probe passes even when the app is down"}
	}
	mode := portMode(p, modes)
	if mode == v1alpha1.MTLSStrict {
		return need{needed: true, reason: "StrictMTLS", message: fmt.Sprintf("STRICT mTLS on port %d rejects the kubelet, which has no mesh certificate", p.Port)}
	}
	return need{reason: "PortNotStrict", message: fmt.Sprintf("mTLS mode on port %d is %s, so the kubelet reaches the app", p.Port, mode)}
}

func portMode(p probes.Probe, modes mtls.Workload) v1alpha1.MTLSMode {
	if p.Port > 0 {
		return modes.ForPort(p.Port)
	}
	return modes.Mode
}

func probeStatus(p probes.Probe, statusPort int32, modes mtls.Workload, n need) v1alpha1.ProbeStatus {
	ps := v1alpha1.ProbeStatus{
		Container: p.Container,
		Kind:      p.Kind,
		Handler:   p.Handler,
		Original:  p.Original,
		State:     v1alpha1.ProbeNotNeeded,
		Reason:    n.reason,
		Message:   n.message,
	}
	if p.Handler != v1alpha1.HandlerExec {
		ps.MTLSMode = portMode(p, modes)
		ps.Rewritten = probes.RewrittenTarget(p, statusPort)
	}
	return ps
}

// setRedirectableStates sets the state of every probe the mesh could rewrite (all but exec).
func setRedirectableStates(e *evaluation, analysed []probes.Probe, state v1alpha1.ProbeState, reason string) {
	for i, p := range analysed {
		if p.Handler != v1alpha1.HandlerExec {
			setProbe(&e.status.Probes[i], state, reason, e.status.Message)
		}
	}
}

func setProbe(ps *v1alpha1.ProbeStatus, state v1alpha1.ProbeState, reason, message string) {
	ps.State, ps.Reason, ps.Message = state, reason, truncate(message)
}

// managingPolicy returns the oldest live policy in the namespace that selects the workload; the
// current policy is considered even when the list lacks it.
func managingPolicy(all []*v1alpha1.ProbeRedirectPolicy, current *v1alpha1.ProbeRedirectPolicy, w Workload) *v1alpha1.ProbeRedirectPolicy {
	// The current policy is read fresh; the list may hold a stale copy of it.
	candidates := []*v1alpha1.ProbeRedirectPolicy{current}
	for _, p := range all {
		if p.UID != current.UID {
			candidates = append(candidates, p)
		}
	}
	var oldest *v1alpha1.ProbeRedirectPolicy
	for _, p := range candidates {
		if p.DeletionTimestamp != nil && p.UID != current.UID {
			continue
		}
		selector, err := selectorOf(p)
		if err != nil || !selects(p, selector, w) {
			continue
		}
		if oldest == nil || olderThan(p, oldest) {
			oldest = p
		}
	}
	return oldest
}

func olderThan(a, b *v1alpha1.ProbeRedirectPolicy) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

func selectorOf(p *v1alpha1.ProbeRedirectPolicy) (labels.Selector, error) {
	if p.Spec.Selector == nil {
		return nil, fmt.Errorf("spec.selector is required; write selector: {} to select every workload")
	}
	return metav1.LabelSelectorAsSelector(p.Spec.Selector)
}

func selects(p *v1alpha1.ProbeRedirectPolicy, selector labels.Selector, w Workload) bool {
	return slices.Contains(workloadKinds(p.Spec), w.Kind()) && selector.Matches(labels.Set(w.Template().Labels))
}

func findRecord(records []v1alpha1.RolloutRecord, ref Ref) *v1alpha1.RolloutRecord {
	for i := range records {
		if records[i].Kind == ref.Kind && records[i].Name == ref.Name {
			r := records[i]
			return &r
		}
	}
	return nil
}

func (d *Decision) requeueAt(t time.Time) {
	after := t.Sub(d.in.Now)
	if after <= 0 {
		after = time.Second
	}
	if d.requeue == 0 || after < d.requeue {
		d.requeue = after
	}
}

var kindOrder = map[v1alpha1.WorkloadKind]int{v1alpha1.KindDeployment: 0, v1alpha1.KindStatefulSet: 1, v1alpha1.KindDaemonSet: 2}

// sortedWorkloads orders workloads by kind then name, so rollouts start in a predictable order.
func sortedWorkloads(ws []Workload) []Workload {
	out := slices.Clone(ws)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Ref(), out[j].Ref()
		if a.Kind != b.Kind {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Name < b.Name
	})
	return out
}

// Spec accessors with the API defaults, for objects that bypassed the API server's defaulting.

func workloadKinds(s v1alpha1.ProbeRedirectPolicySpec) []v1alpha1.WorkloadKind {
	if len(s.WorkloadKinds) == 0 {
		return []v1alpha1.WorkloadKind{v1alpha1.KindDeployment, v1alpha1.KindStatefulSet, v1alpha1.KindDaemonSet}
	}
	return s.WorkloadKinds
}

func probeTypes(s v1alpha1.ProbeRedirectPolicySpec) []v1alpha1.ProbeType {
	if len(s.ProbeTypes) == 0 {
		return []v1alpha1.ProbeType{v1alpha1.ProbeTypeHTTP, v1alpha1.ProbeTypeTCP, v1alpha1.ProbeTypeGRPC}
	}
	return s.ProbeTypes
}

func maxConcurrent(s v1alpha1.ProbeRedirectPolicySpec) int32 {
	if s.Rollout.MaxConcurrent < 1 {
		return 1
	}
	return s.Rollout.MaxConcurrent
}

func progressDeadline(s v1alpha1.ProbeRedirectPolicySpec) int32 {
	if s.Rollout.ProgressDeadlineSeconds < 1 {
		return 600
	}
	return s.Rollout.ProgressDeadlineSeconds
}

func pauseOnFailure(s v1alpha1.ProbeRedirectPolicySpec) bool {
	return s.Rollout.PauseOnFailure == nil || *s.Rollout.PauseOnFailure
}

func lower(k v1alpha1.ProbeKind) string {
	switch k {
	case v1alpha1.ProbeReadiness:
		return "readiness"
	case v1alpha1.ProbeLiveness:
		return "liveness"
	default:
		return "startup"
	}
}

func truncate(s string) string {
	if len(s) <= maxMessageLength {
		return s
	}
	cut := maxMessageLength - 3
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

// withDefaults fills what a caller may leave out.
func withDefaults(in Input) Input {
	if in.MTLS == nil {
		in.MTLS = mtls.NewResolver("", nil)
	}
	return in
}

func secondsOf(s int32) time.Duration { return time.Duration(s) * time.Second }
