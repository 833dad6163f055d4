package plan

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/rollout"
)

// Ref names a workload within the policy's namespace.
type Ref struct {
	Kind v1alpha1.WorkloadKind
	Name string
}

func (r Ref) String() string { return string(r.Kind) + "/" + r.Name }

// Workload is one Deployment, StatefulSet or DaemonSet; exactly one of the pointers is set.
type Workload struct {
	Deployment  *appsv1.Deployment
	StatefulSet *appsv1.StatefulSet
	DaemonSet   *appsv1.DaemonSet
	// ManagedByOperator is true when the operator's field manager owns the rewrite annotation on
	// the pod template, i.e. the operator (not a person) put it there.
	ManagedByOperator bool
}

// Kind returns the workload's kind.
func (w Workload) Kind() v1alpha1.WorkloadKind {
	switch {
	case w.Deployment != nil:
		return v1alpha1.KindDeployment
	case w.StatefulSet != nil:
		return v1alpha1.KindStatefulSet
	default:
		return v1alpha1.KindDaemonSet
	}
}

// Object returns the workload's metadata.
func (w Workload) Object() metav1.Object {
	switch {
	case w.Deployment != nil:
		return w.Deployment
	case w.StatefulSet != nil:
		return w.StatefulSet
	default:
		return w.DaemonSet
	}
}

// Ref returns the workload's kind and name.
func (w Workload) Ref() Ref { return Ref{Kind: w.Kind(), Name: w.Object().GetName()} }

// Template returns the workload's pod template.
func (w Workload) Template() *corev1.PodTemplateSpec {
	switch {
	case w.Deployment != nil:
		return &w.Deployment.Spec.Template
	case w.StatefulSet != nil:
		return &w.StatefulSet.Spec.Template
	default:
		return &w.DaemonSet.Spec.Template
	}
}

// Progress judges the workload's rollout the way `kubectl rollout status` does.
func (w Workload) Progress(minGeneration int64) rollout.Progress {
	switch {
	case w.Deployment != nil:
		return rollout.DeploymentProgress(w.Deployment, minGeneration)
	case w.StatefulSet != nil:
		return rollout.StatefulSetProgress(w.StatefulSet, minGeneration)
	default:
		return rollout.DaemonSetProgress(w.DaemonSet, minGeneration)
	}
}

// WorkloadOfPod names the workload that owns a pod through its controller reference. A Deployment
// owns its pods through a ReplicaSet named "<deployment>-<pod-template-hash>", so the Deployment's
// name is read off the ReplicaSet's name without looking the ReplicaSet up.
func WorkloadOfPod(pod *corev1.Pod) (Ref, bool) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return Ref{}, false
	}
	switch owner.Kind {
	case "StatefulSet":
		return Ref{Kind: v1alpha1.KindStatefulSet, Name: owner.Name}, true
	case "DaemonSet":
		return Ref{Kind: v1alpha1.KindDaemonSet, Name: owner.Name}, true
	case "ReplicaSet":
		hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		if hash == "" || !strings.HasSuffix(owner.Name, "-"+hash) {
			return Ref{}, false
		}
		return Ref{Kind: v1alpha1.KindDeployment, Name: strings.TrimSuffix(owner.Name, "-"+hash)}, true
	}
	return Ref{}, false
}

// rewriteFieldPath is the managedFields path of the rewrite annotation on a workload's pod template.
var rewriteFieldPath = []string{"f:spec", "f:template", "f:metadata", "f:annotations", "f:" + mesh.RewriteAnnotation}

// ManagesRewriteAnnotation reports whether fieldManager owns the rewrite annotation of a workload's
// pod template, according to the object's managedFields.
func ManagesRewriteAnnotation(obj metav1.Object, fieldManager string) bool {
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager != fieldManager || entry.FieldsV1 == nil {
			continue
		}
		if fieldsContain(entry.FieldsV1.Raw, rewriteFieldPath) {
			return true
		}
	}
	return false
}
