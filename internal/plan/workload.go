package plan

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

// Object is a Kubernetes object with metadata: the same method set as controller-runtime's
// client.Object, declared here so that plan needs no client package.
type Object interface {
	metav1.Object
	runtime.Object
}

// ObjectList is a list of Kubernetes objects: the same method set as client.ObjectList.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// Kind is one row of WorkloadKinds: everything the operator does that depends on the kind of a
// workload. Adding a kind is adding a row (and its name to v1alpha1.WorkloadKind's enum).
type Kind struct {
	// Kind is the API kind, as in spec.workloadKinds.
	Kind v1alpha1.WorkloadKind
	// NewObject returns an empty object of the kind, for watches.
	NewObject func() Object
	// NewList returns an empty list for the controller to fill; Items returns what it holds.
	NewList func() ObjectList
	Items   func(ObjectList) []Object
	// Apply returns a server-side apply configuration of the named object holding template (nil
	// for none), and a function that reads the generation the API server answered with.
	Apply func(name, namespace string, template *corev1ac.PodTemplateSpecApplyConfiguration) (runtime.ApplyConfiguration, func() *int64)
	// template returns the object's pod template.
	template func(Object) *corev1.PodTemplateSpec
	// progress judges the object's rollout the way `kubectl rollout status` does.
	progress func(Object, int64) rollout.Progress
	// ownerName names the workload that owns a pod through the controller reference owner;
	// ok is false when owner is not this kind's.
	ownerName func(pod *corev1.Pod, owner *metav1.OwnerReference) (name string, ok bool)
}

// WorkloadKinds is the table of workload kinds, in the order their rollouts start.
var WorkloadKinds = []Kind{
	{
		Kind:      v1alpha1.KindDeployment,
		NewObject: func() Object { return &appsv1.Deployment{} },
		NewList:   func() ObjectList { return &appsv1.DeploymentList{} },
		Items:     func(l ObjectList) []Object { return itemsOf(l.(*appsv1.DeploymentList).Items) },
		Apply: func(name, ns string, t *corev1ac.PodTemplateSpecApplyConfiguration) (runtime.ApplyConfiguration, func() *int64) {
			ac := appsv1ac.Deployment(name, ns)
			if t != nil {
				ac.WithSpec(appsv1ac.DeploymentSpec().WithTemplate(t))
			}
			return ac, func() *int64 { return ac.Generation }
		},
		template: func(o Object) *corev1.PodTemplateSpec { return &o.(*appsv1.Deployment).Spec.Template },
		progress: func(o Object, g int64) rollout.Progress { return rollout.DeploymentProgress(o.(*appsv1.Deployment), g) },
		// A Deployment owns its pods through a ReplicaSet named "<deployment>-<pod-template-hash>",
		// so the Deployment's name is read off the ReplicaSet's name without looking it up.
		ownerName: func(pod *corev1.Pod, owner *metav1.OwnerReference) (string, bool) {
			hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			if owner.Kind != "ReplicaSet" || hash == "" || !strings.HasSuffix(owner.Name, "-"+hash) {
				return "", false
			}
			return strings.TrimSuffix(owner.Name, "-"+hash), true
		},
	},
	{
		Kind:      v1alpha1.KindStatefulSet,
		NewObject: func() Object { return &appsv1.StatefulSet{} },
		NewList:   func() ObjectList { return &appsv1.StatefulSetList{} },
		Items:     func(l ObjectList) []Object { return itemsOf(l.(*appsv1.StatefulSetList).Items) },
		Apply: func(name, ns string, t *corev1ac.PodTemplateSpecApplyConfiguration) (runtime.ApplyConfiguration, func() *int64) {
			ac := appsv1ac.StatefulSet(name, ns)
			if t != nil {
				ac.WithSpec(appsv1ac.StatefulSetSpec().WithTemplate(t))
			}
			return ac, func() *int64 { return ac.Generation }
		},
		template: func(o Object) *corev1.PodTemplateSpec { return &o.(*appsv1.StatefulSet).Spec.Template },
		progress: func(o Object, g int64) rollout.Progress {
			return rollout.StatefulSetProgress(o.(*appsv1.StatefulSet), g)
		},
		ownerName: ownedDirectly("StatefulSet"),
	},
	{
		Kind:      v1alpha1.KindDaemonSet,
		NewObject: func() Object { return &appsv1.DaemonSet{} },
		NewList:   func() ObjectList { return &appsv1.DaemonSetList{} },
		Items:     func(l ObjectList) []Object { return itemsOf(l.(*appsv1.DaemonSetList).Items) },
		Apply: func(name, ns string, t *corev1ac.PodTemplateSpecApplyConfiguration) (runtime.ApplyConfiguration, func() *int64) {
			ac := appsv1ac.DaemonSet(name, ns)
			if t != nil {
				ac.WithSpec(appsv1ac.DaemonSetSpec().WithTemplate(t))
			}
			return ac, func() *int64 { return ac.Generation }
		},
		template:  func(o Object) *corev1.PodTemplateSpec { return &o.(*appsv1.DaemonSet).Spec.Template },
		progress:  func(o Object, g int64) rollout.Progress { return rollout.DaemonSetProgress(o.(*appsv1.DaemonSet), g) },
		ownerName: ownedDirectly("DaemonSet"),
	},
}

// KindOf returns the row of WorkloadKinds for kind, or nil.
func KindOf(kind v1alpha1.WorkloadKind) *Kind {
	for i := range WorkloadKinds {
		if WorkloadKinds[i].Kind == kind {
			return &WorkloadKinds[i]
		}
	}
	return nil
}

func itemsOf[T any, PT interface {
	*T
	Object
}](items []T) []Object {
	out := make([]Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}

func ownedDirectly(ownerKind string) func(*corev1.Pod, *metav1.OwnerReference) (string, bool) {
	return func(_ *corev1.Pod, owner *metav1.OwnerReference) (string, bool) {
		return owner.Name, owner.Kind == ownerKind
	}
}

// Ref names a workload within the policy's namespace.
type Ref struct {
	Kind v1alpha1.WorkloadKind
	Name string
}

func (r Ref) String() string { return string(r.Kind) + "/" + r.Name }

// Workload is one object of a kind in WorkloadKinds, as the controller observed it.
type Workload struct {
	// Object is the workload: *appsv1.Deployment, *appsv1.StatefulSet or *appsv1.DaemonSet.
	Object Object
	// ManagedByOperator is true when the operator's field manager owns the rewrite annotation on
	// the pod template, i.e. the operator (not a person) put it there.
	ManagedByOperator bool
	kind              *Kind
}

// NewWorkload wraps an object of kind k (a row of WorkloadKinds).
func NewWorkload(k *Kind, obj Object, managedByOperator bool) Workload {
	return Workload{Object: obj, ManagedByOperator: managedByOperator, kind: k}
}

// Kind returns the workload's kind.
func (w Workload) Kind() v1alpha1.WorkloadKind { return w.kind.Kind }

// Ref returns the workload's kind and name.
func (w Workload) Ref() Ref { return Ref{Kind: w.kind.Kind, Name: w.Object.GetName()} }

// Template returns the workload's pod template.
func (w Workload) Template() *corev1.PodTemplateSpec { return w.kind.template(w.Object) }

// Progress judges the workload's rollout the way `kubectl rollout status` does; minGeneration is
// the generation the operator's change produced (0 when unknown).
func (w Workload) Progress(minGeneration int64) rollout.Progress {
	return w.kind.progress(w.Object, minGeneration)
}

// WorkloadOfPod names the workload of a kind in WorkloadKinds that owns a pod through its
// controller reference; ok is false for a pod no such workload owns.
func WorkloadOfPod(pod *corev1.Pod) (ref Ref, ok bool) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return Ref{}, false
	}
	for i := range WorkloadKinds {
		if name, ok := WorkloadKinds[i].ownerName(pod, owner); ok {
			return Ref{Kind: WorkloadKinds[i].Kind, Name: name}, true
		}
	}
	return Ref{}, false
}

// kindOrder is the position of a kind in WorkloadKinds.
func kindOrder(kind v1alpha1.WorkloadKind) int {
	return slices.IndexFunc(WorkloadKinds, func(k Kind) bool { return k.Kind == kind })
}

// sortedWorkloads orders workloads by kind (the order of WorkloadKinds) then name, so rollouts
// start in a predictable order.
func sortedWorkloads(ws []Workload) []Workload {
	out := slices.Clone(ws)
	slices.SortStableFunc(out, func(a, b Workload) int {
		if d := kindOrder(a.Kind()) - kindOrder(b.Kind()); d != 0 {
			return d
		}
		return strings.Compare(a.Object.GetName(), b.Object.GetName())
	})
	return out
}
