package analyze

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// Verdict is what will happen to a workload's probes in the mesh.
type Verdict string

const (
	// WillBreak: a probe needs redirecting, and no policy in the input or annotation on the
	// template redirects it. Under STRICT mTLS an HTTP or gRPC probe is reset; a TCP probe passes
	// even when the app is down.
	WillBreak Verdict = "WillBreak"
	// FixedByPolicy: a probe needs redirecting, and the named ProbeRedirectPolicy will annotate
	// the workload.
	FixedByPolicy Verdict = "FixedByPolicy"
	// Redirected: the template already enables the rewrite (sidecar.istio.io/rewriteAppHTTPProbers,
	// kuma.io/application-probe-proxy-port).
	Redirected Verdict = "Redirected"
	// OptedOut: the template turns the rewrite off; probes that need redirecting will break.
	OptedOut Verdict = "OptedOut"
	// NotNeeded: no probe needs redirecting.
	NotNeeded Verdict = "NotNeeded"
	// NotInMesh: no sidecar is injected into the workload's pods.
	NotInMesh Verdict = "NotInMesh"
	// Unsupported: redirecting would break a probe (a hazard), or the template's mesh annotations
	// are invalid; the operator leaves the workload alone.
	Unsupported Verdict = "Unsupported"
)

// Source says where an object was read: a file and the line its document starts on. Objects read
// from a cluster have an empty File.
type Source struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// Workload is a workload to judge and where it was read.
type Workload struct {
	plan.Workload
	Source Source
}

// Objects are the decoded inputs: the workloads to judge and their context.
type Objects struct {
	Namespaces          []*corev1.Namespace
	PeerAuthentications []*securityv1.PeerAuthentication
	Policies            []*v1alpha1.ProbeRedirectPolicy
	// KumaMeshes and KumaMeshTLSes are Kuma's kuma.io/v1alpha1 Meshes and MeshTLS policies, as
	// the operator reads them.
	KumaMeshes    []kumamesh.Mesh
	KumaMeshTLSes []kumamesh.MeshTLS
	Workloads     []Workload
	// Ignored lists the objects that are none of the above, for the report.
	Ignored []Ignored
}

// Ignored is an object the analysis does not judge.
type Ignored struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name,omitempty"`
	Source     Source `json:"source"`
	// Why says why it is not judged, when that is not simply its kind.
	Why string `json:"why,omitempty"`
}

// Options are the settings the judgement depends on, as the operator's flags.
type Options struct {
	// RootNamespace is Istio's root namespace (the operator's --root-namespace).
	RootNamespace string
	// StatusPort is the mesh's default status port (the operator's --status-port).
	StatusPort int32
	// Now is the moment of the judgement.
	Now time.Time
	// Istio is the Istio version to judge by; unknown (the zero value) follows the newest Istio.
	Istio istiomesh.IstioVersion
	// KumaSystemNamespace is Kuma's system namespace (the operator's --kuma-system-namespace);
	// "" is kuma.DefaultSystemNamespace.
	KumaSystemNamespace string
}

// Report is the judgement of every workload, in namespace, kind and name order.
type Report struct {
	Workloads []WorkloadFinding `json:"workloads"`
	Ignored   []Ignored         `json:"ignored,omitempty"`
	// Notes say what the input lacked, for example a namespace whose labels are unknown.
	Notes []string `json:"notes,omitempty"`
}

// WorkloadFinding is the judgement of one workload.
type WorkloadFinding struct {
	Namespace string                `json:"namespace"`
	Kind      v1alpha1.WorkloadKind `json:"kind"`
	Name      string                `json:"name"`
	Source    Source                `json:"source,omitzero"`
	Verdict   Verdict               `json:"verdict"`
	// Mesh is the mesh that injects the workload's sidecar, or would inject it (the operator's
	// status.workloads[].mesh).
	Mesh v1alpha1.MeshName `json:"mesh,omitempty"`
	// Policy names the ProbeRedirectPolicy that selects the workload, "" when none does.
	Policy string `json:"policy,omitempty"`
	// MTLSMode is the effective workload-level mTLS mode (Istio's PeerAuthentication, Kuma's
	// Mesh and MeshTLS).
	MTLSMode v1alpha1.MTLSMode     `json:"mtlsMode,omitempty"`
	Reason   v1alpha1.StatusReason `json:"reason,omitempty"`
	Message  string                `json:"message,omitempty"`
	Probes   []ProbeFinding        `json:"probes,omitempty"`
}

// ProbeFinding is the judgement of one probe.
type ProbeFinding struct {
	Container string                `json:"container"`
	Kind      v1alpha1.ProbeKind    `json:"kind"`
	Handler   v1alpha1.ProbeHandler `json:"handler"`
	Original  string                `json:"original,omitempty"`
	Rewritten string                `json:"rewritten,omitempty"`
	MTLSMode  v1alpha1.MTLSMode     `json:"mtlsMode,omitempty"`
	// Verdict is the workload's verdict as it applies to this probe: NotNeeded for a probe that
	// needs no redirect in a workload that has one that does.
	Verdict Verdict `json:"verdict"`
	// Need says why the probe needs redirecting, "" when it does not; NeedMessage says it to a person.
	Need        v1alpha1.StatusReason `json:"need,omitempty"`
	NeedMessage string                `json:"needMessage,omitempty"`
	// Breaks is true when the probe will misreport in the mesh as the manifests stand, after
	// the operator has applied the policies in the input.
	Breaks  bool                  `json:"breaks"`
	Reason  v1alpha1.StatusReason `json:"reason,omitempty"`
	Message string                `json:"message,omitempty"`
}

// Analyze judges every workload in objs with plan.Decide: each workload under the policy that
// would manage it (the oldest in its namespace that selects it), or, when none does, under a
// policy with the API's defaults that selects everything, to say what it would need.
func Analyze(objs Objects, opts Options) Report {
	report := Report{Ignored: objs.Ignored}
	objs = newestUnlessDated(objs, opts.Now)
	for _, p := range objs.Policies {
		if _, err := metav1.LabelSelectorAsSelector(p.Spec.Selector.AsLabelSelector()); err != nil || p.Spec.Selector == nil {
			report.Notes = append(report.Notes, fmt.Sprintf("ProbeRedirectPolicy %s/%s selects nothing: its spec.selector is invalid or missing (the API server would reject it).", p.Namespace, p.Name))
		}
	}
	namespaces := map[string]*corev1.Namespace{}
	for _, ns := range objs.Namespaces {
		namespaces[ns.Name] = ns
	}
	if opts.KumaSystemNamespace == "" {
		opts.KumaSystemNamespace = kumamesh.DefaultSystemNamespace
	}
	modes := resolvers{
		istio: istiomesh.NewResolver(opts.RootNamespace, objs.PeerAuthentications),
		kuma:  kumamesh.NewResolver(objs.KumaMeshes, objs.KumaMeshTLSes, opts.KumaSystemNamespace),
	}
	unknown := map[string]bool{}
	for _, w := range objs.Workloads {
		ns := w.Object.GetNamespace()
		namespace, known := namespaces[ns]
		if !known && !unknown[ns] {
			unknown[ns] = true
			report.Notes = append(report.Notes, "Namespace "+ns+" is not in the input, so its injection labels are unknown: its workloads count as outside the mesh. Add the Namespace with --context-file or read it with --cluster.")
		}
		report.Workloads = append(report.Workloads, judge(w, namespace, policiesIn(objs.Policies, ns), modes, opts))
	}
	slices.SortStableFunc(report.Workloads, func(a, b WorkloadFinding) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), cmp.Compare(a.Name, b.Name))
	})
	return report
}

// resolvers answer the effective mTLS modes of each mesh.
type resolvers struct {
	istio *istiomesh.Resolver
	kuma  *kumamesh.Resolver
}

// judge runs plan.Decide for one workload and reads its verdict. namespace is nil when the input
// does not have the workload's Namespace.
func judge(w Workload, namespace *corev1.Namespace, policies []*v1alpha1.ProbeRedirectPolicy, modes resolvers, opts Options) WorkloadFinding {
	ns := w.Object.GetNamespace()
	owner := plan.ManagingPolicy(policies, w.Workload)
	// Whether a probe breaks is judged under the API's defaults (every handler, StrictMTLS): a
	// policy that leaves a handler out of spec.probeTypes does not make its probe work.
	byDefault := decide(w, namespace, &v1alpha1.ProbeRedirectPolicy{ObjectMeta: metav1.ObjectMeta{Name: "(none)", Namespace: ns},
		Spec: v1alpha1.ProbeRedirectPolicySpec{Selector: &v1alpha1.LabelSelector{}}}, modes, opts)
	d := byDefault
	if owner != nil {
		d = decide(w, namespace, owner, modes, opts)
	}
	ref := w.Ref()
	f := WorkloadFinding{Namespace: ns, Kind: ref.Kind, Name: ref.Name, Source: w.Source}
	if owner != nil {
		f.Policy = owner.Name
	}
	v := d.Verdicts[0]
	f.Mesh, f.MTLSMode, f.Reason, f.Message = v.Status.Mesh, v.Status.MTLSMode, v.Status.Reason, v.Status.Message
	f.Verdict = verdictOf(v, owner)
	for i, ps := range v.Status.Probes {
		p := ProbeFinding{Container: ps.Container, Kind: ps.Kind, Handler: ps.Handler, Original: ps.Original,
			Rewritten: ps.Rewritten, MTLSMode: ps.MTLSMode, Reason: ps.Reason, Message: ps.Message}
		if i < len(v.Needs) && f.Verdict != NotInMesh {
			// Without a sidecar nothing intercepts the probe, whatever the mTLS mode says.
			p.Need, p.NeedMessage = v.Needs[i].Reason, v.Needs[i].Message
		}
		p.Breaks = breaks(f.Verdict, v.Annotated, p, ps.State)
		p.Verdict = probeVerdict(f.Verdict, p)
		if defaults := byDefault.Verdicts[0].Needs; f.Verdict != NotInMesh && p.Need == "" && i < len(defaults) && defaults[i].Reason != "" &&
			p.Verdict != Redirected && p.Verdict != OptedOut && f.Verdict != Unsupported {
			// The policy's spec leaves this probe out, yet it misreports in the mesh.
			p.Need, p.NeedMessage, p.Breaks, p.Verdict = defaults[i].Reason, defaults[i].Message+"; policy "+owner.Name+"'s spec (probeTypes, trigger) leaves it out", true, WillBreak
		}
		f.Probes = append(f.Probes, p)
	}
	if f.Verdict == FixedByPolicy {
		f.Message = "policy " + owner.Name + " will annotate the workload"
	}
	return f
}

// decide runs plan.Decide for one workload under policy, with the meshes the operator asks (Istio,
// then Kuma); the one that claims the workload most strongly decides.
func decide(w Workload, namespace *corev1.Namespace, policy *v1alpha1.ProbeRedirectPolicy, modes resolvers, opts Options) plan.Decision {
	var labels, annotations map[string]string
	if namespace != nil {
		labels, annotations = namespace.Labels, namespace.Annotations
	}
	istio := &istiomesh.View{Namespace: policy.Namespace, NamespaceLabels: labels, Istio: opts.Istio, MTLS: modes.istio, StatusPort: opts.StatusPort}
	kuma := &kumamesh.View{Namespace: policy.Namespace, NamespaceLabels: withNameLabel(labels, namespace), NamespaceAnnotations: annotations,
		SystemNamespace: opts.KumaSystemNamespace, Modes: modes.kuma}
	return plan.Decide(plan.Input{
		Policy:    policy,
		Policies:  []*v1alpha1.ProbeRedirectPolicy{policy},
		Workloads: []plan.Workload{w.Workload},
		Meshes:    []mesh.Mesh{istio, kuma},
		Now:       opts.Now,
	})
}

// withNameLabel returns labels with kubernetes.io/metadata.name, which the API server sets on every
// Namespace but a manifest may leave out; Kuma reads it to spot its system namespace. labels itself
// is not changed.
func withNameLabel(labels map[string]string, namespace *corev1.Namespace) map[string]string {
	if namespace == nil || labels[corev1.LabelMetadataName] != "" {
		return labels
	}
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[corev1.LabelMetadataName] = namespace.Name
	return out
}

// newestUnlessDated gives the policies and PeerAuthentications that have no creationTimestamp
// (objects in the files, not yet applied) the moment of the judgement: they will be the newest,
// so an existing older one keeps precedence, as it will in the cluster.
func newestUnlessDated(objs Objects, now time.Time) Objects {
	stamp := metav1.NewTime(now.Truncate(time.Second))
	objs.Policies = dated(objs.Policies, stamp)
	objs.PeerAuthentications = dated(objs.PeerAuthentications, stamp)
	return objs
}

// dated returns objs with a copy of each undated one stamped; objs itself is not changed.
func dated[T interface {
	metav1.Object
	DeepCopy() T
}](objs []T, stamp metav1.Time) []T {
	out := make([]T, len(objs))
	for i, o := range objs {
		if created := o.GetCreationTimestamp(); created.IsZero() {
			o = o.DeepCopy()
			o.SetCreationTimestamp(stamp)
		}
		out[i] = o
	}
	return out
}

// verdictOf reads the workload's verdict from the operator's decision.
func verdictOf(v plan.Verdict, owner *v1alpha1.ProbeRedirectPolicy) Verdict {
	switch v.Status.State {
	case v1alpha1.WorkloadQueued, v1alpha1.WorkloadSuspended:
		if owner != nil && v.Status.State == v1alpha1.WorkloadQueued {
			return FixedByPolicy
		}
		return WillBreak
	case v1alpha1.WorkloadOptedOut:
		return OptedOut
	case v1alpha1.WorkloadNotNeeded:
		return NotNeeded
	case v1alpha1.WorkloadNotInMesh:
		return NotInMesh
	case v1alpha1.WorkloadUnsupported:
		return Unsupported
	}
	// Rolling, Redirected, ManualRolloutRequired, RolloutFailed: the template enables the rewrite;
	// a manifest has no live pods to follow.
	return Redirected
}

// breaks says whether a probe will misreport once the manifests are applied and the policies in
// them have acted.
func breaks(verdict Verdict, annotated bool, p ProbeFinding, state v1alpha1.ProbeState) bool {
	switch verdict {
	case WillBreak, OptedOut:
		return p.Need != ""
	case Unsupported:
		// Unredirected, a probe that needs it breaks; redirected, a hazard breaks it; and a startup
		// probe behind an ordinary istio-proxy deadlocks wherever Istio rewrites (its default).
		return p.Need != "" || (annotated && state == v1alpha1.ProbeUnsupported) || p.Reason == v1alpha1.StatusReasonStartupProbeBeforeSidecar
	}
	return false
}

// probeVerdict is the workload's verdict as it applies to one of its probes.
func probeVerdict(workload Verdict, p ProbeFinding) Verdict {
	switch {
	case p.Handler == v1alpha1.HandlerExec:
		return NotNeeded
	case workload == Redirected, workload == NotInMesh, p.Breaks, p.Need != "":
		return workload
	}
	return NotNeeded
}

func policiesIn(all []*v1alpha1.ProbeRedirectPolicy, ns string) []*v1alpha1.ProbeRedirectPolicy {
	var out []*v1alpha1.ProbeRedirectPolicy
	for _, p := range all {
		if p.Namespace == ns {
			out = append(out, p)
		}
	}
	return out
}

func kindOrder(kind v1alpha1.WorkloadKind) int {
	return slices.IndexFunc(plan.WorkloadKinds, func(k plan.Kind) bool { return k.Kind == kind })
}

// FailOn chooses which findings make the analysis fail.
type FailOn string

const (
	// FailOnBreak fails when a probe will break: nothing in the input redirects a probe that
	// needs it, or redirecting it would break it.
	FailOnBreak FailOn = "break"
	// FailOnNeedsRedirect also fails when a policy in the input will fix a probe, that is when
	// any probe is not redirected in the manifests themselves.
	FailOnNeedsRedirect FailOn = "needs-redirect"
	// FailOnNever never fails.
	FailOnNever FailOn = "never"
)

// FailOnValues are the values --fail-on accepts.
var FailOnValues = []FailOn{FailOnBreak, FailOnNeedsRedirect, FailOnNever}

// Fails reports whether the report fails under f.
func (r Report) Fails(f FailOn) bool {
	for _, w := range r.Workloads {
		if f == FailOnNeedsRedirect && w.Verdict == FixedByPolicy {
			return true
		}
		if f == FailOnNever {
			continue
		}
		for _, p := range w.Probes {
			if p.Breaks {
				return true
			}
		}
	}
	return false
}
