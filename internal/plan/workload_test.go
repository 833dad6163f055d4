package plan_test

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

func TestWorkloadOfPod(t *testing.T) {
	owned := func(kind, name string, controller bool, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, Controller: ptr.To(controller)}}}}
	}
	hash := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: podHash}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want plan.Ref
		ok   bool
	}{
		{"ReplicaSet named <deployment>-<hash>", owned("ReplicaSet", "web-"+podHash, true, hash), deploymentRef("web"), true},
		{"Deployment name with dashes", owned("ReplicaSet", "my-web-app-"+podHash, true, hash), deploymentRef("my-web-app"), true},
		{"ReplicaSet name not ending in the hash", owned("ReplicaSet", "web-abc123", true, hash), plan.Ref{}, false},
		{"hash without the dash", owned("ReplicaSet", "web"+podHash, true, hash), plan.Ref{}, false},
		{"ReplicaSet pod without pod-template-hash", owned("ReplicaSet", "web-"+podHash, true, nil), plan.Ref{}, false},
		{"StatefulSet", owned("StatefulSet", "db", true, nil), ref(v1alpha1.KindStatefulSet, "db"), true},
		{"DaemonSet", owned("DaemonSet", "agent", true, nil), ref(v1alpha1.KindDaemonSet, "agent"), true},
		{"Job", owned("Job", "migrate", true, nil), plan.Ref{}, false},
		{"owner that is not the controller", owned("StatefulSet", "db", false, nil), plan.Ref{}, false},
		{"no owner", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, plan.Ref{}, false},
		{"built by podOf for a Deployment", podOf(deployment("web"), "x1"), deploymentRef("web"), true},
		{"built by podOf for a StatefulSet", podOf(statefulSet("db"), "0"), ref(v1alpha1.KindStatefulSet, "db"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, ok := plan.WorkloadOfPod(tt.pod)
			g.Expect(ok).To(Equal(tt.ok))
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestWorkloadAccessors(t *testing.T) {
	g := NewWithT(t)
	for _, w := range []plan.Workload{deployment("a"), statefulSet("a"), daemonSet("a")} {
		g.Expect(w.Object.GetName()).To(Equal("a"))
		g.Expect(w.Template().Labels).To(HaveKeyWithValue("app", "a"))
		g.Expect(w.Progress(0).Complete).To(BeTrue(), "%s", w.Kind())
		g.Expect(w.Progress(2).Complete).To(BeFalse(), "%s: generation 2 is not observed", w.Kind())
	}
	g.Expect(deployment("a").Ref().String()).To(Equal("Deployment/a"))
	g.Expect(statefulSet("a").Ref().String()).To(Equal("StatefulSet/a"))
	g.Expect(daemonSet("a").Ref().String()).To(Equal("DaemonSet/a"))
}
