package controllers_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/controllers"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// fixtureWorkloads makes, from every pod template of Istio's and Kuma's golden files, a
// Deployment, a StatefulSet and a DaemonSet in one of several rollout states, each with kubectl's
// last-applied-configuration, the operator's managedFields entry (on every other one) and
// another manager's.
func fixtureWorkloads(t *testing.T) []client.Object {
	t.Helper()
	names := []string{}
	pods := fixturePods(t)
	for name := range pods {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []client.Object
	for i, name := range names {
		pod := pods[name]
		template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": fmt.Sprintf("w%d", i)},
			Annotations: pod.Annotations}, Spec: pod.Spec}
		for k, v := range pod.Labels {
			template.Labels[k] = v
		}
		meta := func(prefix string) metav1.ObjectMeta {
			m := metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: "shop", UID: "uid", ResourceVersion: "7",
				Generation: int64(2 + i%3), Labels: map[string]string{"team": "a"},
				Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"Deployment"}`, "note": "kept"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate,
					FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:kuma.io/application-probe-proxy-port":{},"f:sidecar.istio.io/rewriteAppHTTPProbers":{}}}}}}`)}}}
			if i%2 == 0 {
				m.ManagedFields = append(m.ManagedFields, metav1.ManagedFieldsEntry{Manager: controllers.FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
					FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:sidecar.istio.io/rewriteAppHTTPProbers":{}}}}}}`)})
			}
			return m
		}
		observed := meta("x").Generation - int64(i%2)
		d := &appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2 + i%2)), Paused: i%5 == 4,
			Selector: &metav1.LabelSelector{MatchLabels: template.Labels}, Template: template, ProgressDeadlineSeconds: ptr.To(int32(600)),
			RevisionHistoryLimit: ptr.To(int32(10))},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: 3, UpdatedReplicas: int32(1 + i%3), AvailableReplicas: int32(i % 4),
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: []string{"NewReplicaSetAvailable", "ProgressDeadlineExceeded", "ReplicaSetUpdated"}[i%3],
					Message: fmt.Sprintf(`ReplicaSet "d-%d-5d8f7c9b4" is progressing.`, i), LastUpdateTime: metav1.Unix(1767225600, 0), LastTransitionTime: metav1.Unix(1767225500, 0)}}}}
		s := &appsv1.StatefulSet{ObjectMeta: meta("s"), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2)), ServiceName: "svc",
			Selector: &metav1.LabelSelector{MatchLabels: template.Labels}, Template: template,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: observed, Replicas: 2, ReadyReplicas: int32(i % 3), UpdatedReplicas: int32(i % 3),
				CurrentRevision: "r1", UpdateRevision: []string{"r1", "r2"}[i%2]}}
		switch i % 3 {
		case 1:
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		case 2:
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(int32(1))}}
		}
		ds := &appsv1.DaemonSet{ObjectMeta: meta("ds"), Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: template.Labels},
			Template: template, MinReadySeconds: 5},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: 3, UpdatedNumberScheduled: int32(i % 4), NumberAvailable: int32(i % 3)}}
		if i%2 == 1 {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		} else {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromInt32(1))}}
		}
		out = append(out, d, s, ds)
	}
	return out
}

// slimmed passes every object through controllers.SlimWorkload (a deep copy: the transform must
// not need the whole object afterwards).
func slimmed(t *testing.T, objs []client.Object) []client.Object {
	t.Helper()
	out := make([]client.Object, len(objs))
	for i, obj := range objs {
		slim, err := controllers.SlimWorkload(obj.DeepCopyObject())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = slim.(client.Object)
	}
	return out
}

// workloadsOf wraps objects as the controller does (listWorkloads).
func workloadsOf(objs []client.Object) []plan.Workload {
	var out []plan.Workload
	for _, obj := range objs {
		kind := plan.KindOf(v1alpha1.WorkloadKind(kindName(obj)))
		out = append(out, plan.NewWorkload(kind, obj, controllers.ManagesRewriteAnnotation(obj, controllers.FieldOwner)))
	}
	return out
}

func kindName(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	}
	return "DaemonSet"
}

// TestSlimWorkloadKeepsEveryDecision checks, on workloads made from every pod template of Istio's
// and Kuma's golden files, that the decision in an Istio namespace and in a Kuma namespace under
// STRICT mutual TLS, every workload's rollout progress, who owns the redirect annotation and the
// Istio version read from istiod are the same on the cache's slim workloads as on whole ones,
// and that the slim workloads are smaller.
func TestSlimWorkloadKeepsEveryDecision(t *testing.T) {
	g := NewWithT(t)
	whole := fixtureWorkloads(t)
	g.Expect(len(whole)).To(BeNumerically(">=", 60))
	slim := slimmed(t, whole)

	var wholeSize, slimSize int
	for i := range whole {
		a, _ := yaml.Marshal(whole[i])
		b, _ := yaml.Marshal(slim[i])
		wholeSize, slimSize = wholeSize+len(a), slimSize+len(b)
		g.Expect(slim[i].GetAnnotations()).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation))
		g.Expect(slim[i].GetAnnotations()).To(HaveKeyWithValue("note", "kept"))
		for _, e := range slim[i].GetManagedFields() {
			g.Expect(e.Manager).To(Equal(controllers.FieldOwner))
		}
		if d, ok := slim[i].(*appsv1.Deployment); ok {
			for _, c := range d.Status.Conditions {
				g.Expect(c.Message).To(BeEmpty())
				g.Expect(c.LastUpdateTime.IsZero()).To(BeTrue())
			}
		}
	}
	g.Expect(slimSize).To(BeNumerically("<", wholeSize))

	wholeWorkloads, slimWorkloads := workloadsOf(whole), workloadsOf(slim)
	managed := 0
	for i := range wholeWorkloads {
		g.Expect(slimWorkloads[i].ManagedByOperator).To(Equal(wholeWorkloads[i].ManagedByOperator), whole[i].GetName())
		if wholeWorkloads[i].ManagedByOperator {
			managed++
		}
		for _, minGeneration := range []int64{0, 2, 3, 9} {
			g.Expect(slimWorkloads[i].Progress(minGeneration)).To(Equal(wholeWorkloads[i].Progress(minGeneration)), whole[i].GetName())
		}
	}
	g.Expect(managed).To(BeNumerically(">", 0))

	strict := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "istio-system"},
		Spec: securityapi.PeerAuthentication{Mtls: &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}}}
	policy := &v1alpha1.ProbeRedirectPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "redirect", UID: "uid-redirect", Generation: 1},
		Spec: v1alpha1.ProbeRedirectPolicySpec{Selector: &v1alpha1.LabelSelector{}, Rollout: v1alpha1.RolloutPolicy{MaxConcurrent: 50, PauseOnFailure: ptr.To(false)}}}
	for _, namespaceLabels := range []map[string]string{{"istio-injection": "enabled"}, {kumamesh.SidecarInjectionLabel: "enabled"}} {
		decide := func(ws []plan.Workload) plan.Decision {
			return plan.Decide(plan.Input{Policy: policy, Policies: []*v1alpha1.ProbeRedirectPolicy{policy}, Workloads: ws,
				Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Config: plan.Config{UnhealthyWindow: 10 * time.Minute},
				Meshes: []mesh.Mesh{
					&istiomesh.View{Namespace: "shop", NamespaceLabels: namespaceLabels, StatusPort: istiomesh.DefaultStatusPort,
						MTLS: istiomesh.NewResolver("istio-system", []*securityv1.PeerAuthentication{strict})},
					&kumamesh.View{Namespace: "shop", NamespaceLabels: namespaceLabels, MeshesKnown: true, SystemNamespace: kumamesh.DefaultSystemNamespace,
						Modes: kumamesh.NewResolver([]kumamesh.Mesh{{Name: "default", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSStrict}}, nil, kumamesh.DefaultSystemNamespace)},
				}})
		}
		want, got := decide(wholeWorkloads), decide(slimWorkloads)

		g.Expect(want.Verdicts).To(HaveLen(len(whole)))
		g.Expect(want.Annotate).NotTo(BeEmpty(), "the fixtures hold workloads to annotate")
		g.Expect(got).To(Equal(want), "namespace %v", namespaceLabels)
	}

	istiod := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: "istio-system", Labels: map[string]string{"app": "istiod"}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"istio.io/rev": "default"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.29.1",
				Env: []corev1.EnvVar{{Name: "PILOT_TRACE_SAMPLING", Value: "1"}}}}}}}}
	slimIstiod := slimmed(t, []client.Object{istiod})[0].(*appsv1.Deployment)
	version := istiomesh.NamespaceVersion(nil, []appsv1.Deployment{*istiod}, nil)
	g.Expect(version.Version).NotTo(BeNil())
	g.Expect(istiomesh.NamespaceVersion(nil, []appsv1.Deployment{*slimIstiod}, nil)).To(Equal(version))
}

// TestSlimWorkloadPassesOtherObjects leaves objects other than the three workload kinds alone.
func TestSlimWorkloadPassesOtherObjects(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
	out, err := controllers.SlimWorkload(pod)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(out).To(BeIdenticalTo(pod))
}
