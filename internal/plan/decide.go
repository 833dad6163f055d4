package plan

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
	"github.com/proberedirect/probe-redirect-operator/internal/unhealthy"
)

// Config holds the operator-wide settings the decisions depend on.
type Config struct {
	// UnhealthyWindow is how long an Unhealthy event keeps a pod in the report.
	UnhealthyWindow time.Duration
}

// Input is everything the controller observed for one policy. It is read, never changed.
type Input struct {
	Policy *v1alpha1.ProbeRedirectPolicy
	// Policies are all ProbeRedirectPolicies in the namespace; the oldest one that selects a
	// workload manages it.
	Policies []*v1alpha1.ProbeRedirectPolicy
	// Workloads are the namespace's objects of every kind in WorkloadKinds.
	Workloads []Workload
	// Pods are the pods of the namespace.
	Pods []*corev1.Pod
	// Events are the namespace's kubelet Unhealthy events.
	Events []corev1.Event
	// Meshes are the service meshes as seen from the namespace, in the order the status lists
	// them; the one that claims a workload most strongly decides for it (mesh.Choose).
	Meshes []mesh.Mesh
	Now    time.Time
	Config Config
}

// Event is a Kubernetes Event to record on the policy.
type Event struct {
	// Type is corev1.EventTypeNormal or corev1.EventTypeWarning.
	Type    string
	Reason  v1alpha1.EventReason
	Message string
	// Workload is the workload the Event is about, nil when it is about the policy as a whole. The
	// controller names it as the Event's related object: Events of one reason on one policy are
	// otherwise one series to client-go's events.k8s.io recorder (its isomorphism key holds the
	// regarding and related objects, the reason and the action, not the note), which keeps only
	// the first workload's message and later writes a closing patch for the series.
	Workload *Ref
}

// ApplyResult is what happened when the controller changed one workload's template.
type ApplyResult struct {
	// Generation is the workload's metadata.generation the change produced.
	Generation int64
	Err        error
}

// Decision is what the policy should do now, as plain data. The controller carries out Annotate
// (or Restore), then passes the Decision and the results to Complete for the status and Events.
type Decision struct {
	// Restoring is true for a deleting policy with onDelete Restore (DecideRestore).
	Restoring bool
	// Annotate lists the workloads whose template gets the rewrite annotation now.
	Annotate []Ref
	// Restore lists the workloads whose operator-added annotation is removed now.
	Restore []Ref
	// Verdicts hold the verdict on every selected workload, in rollout order.
	Verdicts []Verdict
	// InvalidSelector is why spec.selector cannot be used, "" when it can.
	InvalidSelector string
	// Events are transitions noticed while deciding (rollouts that completed, a skipped restore).
	Events []Event
	// RecheckAt are the moments a verdict changes by itself (rollout deadlines).
	RecheckAt []time.Time
	// Policy is what Complete needs to know of the policy as observed.
	Policy PolicyContext
	// Unhealthy reports the pods of managed workloads with Unhealthy events in the window.
	Unhealthy UnhealthyReport
}

// PolicyContext is the part of the observed policy that the status is built from.
type PolicyContext struct {
	Generation int64
	// Previous is the status as observed; Complete never changes it.
	Previous v1alpha1.ProbeRedirectPolicyStatus
	// Meshes are the meshes as seen from the namespace, for the policy's mesh, mode and versions.
	Meshes           []mesh.Mesh
	Now              time.Time
	ProgressDeadline time.Duration
}

// UnhealthyReport is the bounded list of pods with Unhealthy events and its exact total.
type UnhealthyReport struct {
	// Pods are the pods with Unhealthy events, latest first, at most MaxUnhealthyPodEntries.
	Pods  []v1alpha1.UnhealthyPod
	Total int32
	// NextExpiry is when the first event leaves the window; zero for none.
	NextExpiry time.Time
}

// Need says whether one probe needs redirecting under a policy: Reason is
// StatusReasonStrictMTLS, StatusReasonTCPPassesFalsely or StatusReasonTriggerAlways, and "" when
// the probe does not need it; Message says why to a person.
type Need struct {
	Reason  v1alpha1.StatusReason
	Message string
}

// Verdict is the decision on one selected workload, as plain data.
type Verdict struct {
	Ref    Ref
	Status v1alpha1.WorkloadStatus
	// Record is the rollout record to keep in status.rollouts, nil for none.
	Record *v1alpha1.RolloutRecord
	// Needs says, for each entry of Status.Probes, why that probe needs redirecting under the
	// policy; nil for a conflicting workload. The states in Status.Probes may hide it (an opted-out
	// workload's probes say OptedOut).
	Needs []Need
	// Annotation is what the operator writes to the workload's pod template to turn the redirect
	// on, in the workload's mesh.
	Annotation mesh.Annotation
	// Annotated is true when the template enables the rewrite.
	Annotated bool
	// RolledOut is true when the workload is annotated and its rollout is complete.
	RolledOut bool
	// InFlight is true while a rollout this policy started (or restores) is in progress.
	InFlight bool
	// Admitted is true when Annotate or Restore carries this workload now.
	Admitted bool
	// RolloutCompleted is true when a rollout this policy started was seen complete now.
	RolloutCompleted bool
	// RecheckAt is when the verdict changes by itself (the deadline of an in-flight rollout).
	RecheckAt time.Time
}

// Decide evaluates every workload the policy selects and picks those to annotate now, within
// spec.rollout.maxConcurrent and pauseOnFailure.
func Decide(in Input) Decision {
	d := newDecision(in, false)
	selector, err := selectorOf(in.Policy)
	if err != nil {
		d.InvalidSelector = err.Error()
		return d
	}
	for _, w := range sortedWorkloads(in.Workloads) {
		if selects(in.Policy, selector, w) {
			d.Verdicts = append(d.Verdicts, judge(in, w))
		}
	}
	for _, v := range d.Verdicts {
		if v.RolloutCompleted {
			d.Events = append(d.Events, Event{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
				Message: fmt.Sprintf("Rollout of %s completed", v.Ref), Workload: &v.Ref})
		}
	}
	d.Annotate = admit(d.Verdicts, in.Policy.Spec)
	return finish(in, d)
}

// AnnotationOf returns the annotation that turns the redirect on for the workload ref, in its
// mesh; ok is false when ref has no verdict.
func (d Decision) AnnotationOf(ref Ref) (a mesh.Annotation, ok bool) {
	for _, v := range d.Verdicts {
		if v.Ref == ref {
			return v.Annotation, v.Annotation.Key != ""
		}
	}
	return mesh.Annotation{}, false
}

// newDecision starts a Decision with the policy's context.
func newDecision(in Input, restoring bool) Decision {
	return Decision{
		Restoring: restoring,
		Policy: PolicyContext{
			Generation:       in.Policy.Generation,
			Previous:         in.Policy.Status,
			Meshes:           in.Meshes,
			Now:              in.Now,
			ProgressDeadline: ProgressDeadline(in.Policy.Spec),
		},
	}
}

// finish adds what follows from the verdicts: the earliest recheck and the Unhealthy report.
func finish(in Input, d Decision) Decision {
	for _, v := range d.Verdicts {
		if !v.RecheckAt.IsZero() {
			d.RecheckAt = append(d.RecheckAt, v.RecheckAt)
		}
	}
	d.Unhealthy = unhealthyReport(in, d.Verdicts)
	return d
}

// admit marks the queued verdicts that may start rolling now and returns them; the others say
// why they wait.
func admit(verdicts []Verdict, spec v1alpha1.ProbeRedirectPolicySpec) []Ref {
	failed, inFlight := 0, 0
	var queued []int
	for i, v := range verdicts {
		if v.Status.State == v1alpha1.WorkloadRolloutFailed {
			failed++
		}
		if v.InFlight {
			inFlight++
		}
		if v.Status.State == v1alpha1.WorkloadQueued {
			queued = append(queued, i)
		}
	}
	paused := failed > 0 && pauseOnFailure(spec)
	slots := rollout.Admit(len(queued), inFlight, maxConcurrent(spec), paused)
	var admitted []Ref
	for n, i := range queued {
		s := &verdicts[i].Status
		switch {
		case n < slots:
			verdicts[i].Admitted = true
			admitted = append(admitted, verdicts[i].Ref)
		case paused:
			s.Reason = v1alpha1.StatusReasonPausedAfterFailure
			s.Message = fmt.Sprintf("%d rollout(s) failed and rollout.pauseOnFailure is true", failed)
		default:
			s.Reason = v1alpha1.StatusReasonWaitingForRolloutSlot
			s.Message = fmt.Sprintf("%d of %d concurrent rollout(s) in progress", inFlight+slots, maxConcurrent(spec))
		}
	}
	return admitted
}

// unhealthyReport lists the windowed Unhealthy records of live pods of workloads this policy
// manages (conflicting workloads are reported by the policy that manages them).
func unhealthyReport(in Input, verdicts []Verdict) UnhealthyReport {
	managed := map[Ref]bool{}
	for _, v := range verdicts {
		if v.Status.State != v1alpha1.WorkloadConflict {
			managed[v.Ref] = true
		}
	}
	owners := map[string]*corev1.Pod{}
	refs := map[string]Ref{}
	for _, pod := range in.Pods {
		if ref, ok := WorkloadOfPod(pod); ok && managed[ref] {
			owners[pod.Name], refs[pod.Name] = pod, ref
		}
	}
	// A pod recreated under the same name (StatefulSets do that) must not inherit the events of
	// its predecessor.
	// The sidecar's own probe (istio-proxy's readiness on 15021) fails on most pod starts; it says
	// nothing about the app's probes, so it never counts against them.
	proxies := map[string]bool{}
	for _, m := range in.Meshes {
		proxies[m.ProxyContainer()] = true
	}
	var events []corev1.Event
	for _, e := range in.Events {
		pod, ok := owners[e.InvolvedObject.Name]
		if ok && (e.InvolvedObject.UID == "" || e.InvolvedObject.UID == pod.UID) && !proxies[unhealthy.ContainerOf(&e)] {
			events = append(events, e)
		}
	}
	records := unhealthy.Summarize(events, in.Now, in.Config.UnhealthyWindow)
	var report UnhealthyReport
	for name, r := range records {
		ref := refs[name]
		report.Pods = append(report.Pods, v1alpha1.UnhealthyPod{
			Pod: r.Pod, WorkloadKind: ref.Kind, Workload: ref.Name, Container: r.Container,
			ProbeKind: r.ProbeKind, Count: r.Count, LastMessage: truncate(r.Message, v1alpha1.MaxMessageLength),
			LastSeen: ptr.To(metav1.NewTime(r.LastSeen.Truncate(time.Second))),
		})
	}
	slices.SortFunc(report.Pods, func(a, b v1alpha1.UnhealthyPod) int {
		if c := b.LastSeen.Compare(a.LastSeen.Time); c != 0 {
			return c
		}
		if a.Pod < b.Pod {
			return -1
		}
		return 1
	})
	report.Total = int32(len(report.Pods))
	report.Pods = bounded(report.Pods, v1alpha1.MaxUnhealthyPodEntries)
	if next := unhealthy.NextExpiry(records, in.Config.UnhealthyWindow); !next.IsZero() {
		report.NextExpiry = next.Add(time.Second)
	}
	return report
}

// ManagingPolicy returns the oldest live policy of policies that selects w (by creation time, then
// name), or nil when none does. A policy whose selector cannot be parsed selects nothing.
func ManagingPolicy(policies []*v1alpha1.ProbeRedirectPolicy, w Workload) *v1alpha1.ProbeRedirectPolicy {
	var oldest *v1alpha1.ProbeRedirectPolicy
	for _, p := range policies {
		if p.DeletionTimestamp != nil {
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

// managingPolicy is ManagingPolicy over the namespace's policies with the current one read fresh:
// the list may hold a stale copy of it, and it counts even while it is being deleted.
func managingPolicy(all []*v1alpha1.ProbeRedirectPolicy, current *v1alpha1.ProbeRedirectPolicy, w Workload) *v1alpha1.ProbeRedirectPolicy {
	var others []*v1alpha1.ProbeRedirectPolicy
	for _, p := range all {
		if p.UID != current.UID {
			others = append(others, p)
		}
	}
	owner := ManagingPolicy(others, w)
	if selector, err := selectorOf(current); err == nil && selects(current, selector, w) && (owner == nil || olderThan(current, owner)) {
		return current
	}
	return owner
}

// selectedByAnotherPolicy reports whether a live policy other than the current one selects w.
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
	return metav1.LabelSelectorAsSelector(p.Spec.Selector.AsLabelSelector())
}

func selects(p *v1alpha1.ProbeRedirectPolicy, selector labels.Selector, w Workload) bool {
	return slices.Contains(workloadKinds(p.Spec), w.Kind()) && selector.Matches(labels.Set(w.Template().Labels))
}

// findRecord returns a copy of the rollout record of ref, or nil.
func findRecord(records []v1alpha1.RolloutRecord, ref Ref) *v1alpha1.RolloutRecord {
	if i := slices.IndexFunc(records, ref.matches); i >= 0 {
		return records[i].DeepCopy()
	}
	return nil
}

func (r Ref) matches(record v1alpha1.RolloutRecord) bool {
	return record.Kind == r.Kind && record.Name == r.Name
}
