/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package compact_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/internal/compact"
)

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
		Name: "nginx", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
		ReadinessProbe: &corev1.Probe{PeriodSeconds: 10, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}},
	}}, InitContainers: []corev1.Container{{Name: "istio-proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Env: []corev1.EnvVar{{Name: "ISTIO_KUBE_APP_PROBERS", Value: `{"/app-health/nginx/readyz":{"tcpSocket":{"port":80}}}`}}}}}
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "shop", UID: "3f2b8f52-6c1e-4b7e-9a51-2f0d6c1b9e11", ResourceVersion: "48213",
		Generation: 3, CreationTimestamp: metav1.Unix(1767225600, 0), Labels: map[string]string{"app": "web"},
		Annotations:     map[string]string{"sidecar.istio.io/status": `{"containers":["istio-proxy"]}`},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f7c9b4", UID: "u", Controller: ptr.To(true)}}}
}

// objects are one object of every kind compact holds, with every field the operator reads set.
func objects() []k8sruntime.Object {
	// Whole seconds: Kubernetes' protobuf encoding of metav1.Time, like its JSON, keeps no
	// fraction (apimachinery's time_proto.go), and the API server sends none.
	deleted := metav1.Unix(1767229200, 0)
	pod := &corev1.Pod{ObjectMeta: meta("web-5d8f7c9b4-x2x9q"), Spec: podSpec()}
	pod.DeletionTimestamp = &deleted
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{"sidecar.istio.io/rewriteAppHTTPProbers": "true"}}, Spec: podSpec()}
	status := appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
			Reason: "ReplicaSetUpdated", Message: `ReplicaSet "web-5d8f7c9b4" is progressing.`, LastUpdateTime: metav1.Unix(1767225700, 0)}}}
	deploymentMeta := meta("web")
	deploymentMeta.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "probe-redirect-operator", Operation: metav1.ManagedFieldsOperationApply,
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:sidecar.istio.io/rewriteAppHTTPProbers":{}}}}}}`)}}
	return []k8sruntime.Object{
		pod,
		&appsv1.Deployment{ObjectMeta: deploymentMeta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Paused: true,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}}, Status: status},
		&appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), Template: template,
			PodManagementPolicy: appsv1.OrderedReadyPodManagement, UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 3, CurrentRevision: "db-1", UpdateRevision: "db-2"}},
		&appsv1.DaemonSet{ObjectMeta: meta("agent"), Spec: appsv1.DaemonSetSpec{Template: template},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 4, UpdatedNumberScheduled: 3}},
		&corev1.Event{ObjectMeta: meta("web-5d8f7c9b4-x2x9q.1812"), Reason: "Unhealthy", Type: corev1.EventTypeWarning, Count: 7,
			Message:        "Readiness probe failed: dial tcp 10.0.0.7:80: connect: connection refused",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-5d8f7c9b4-x2x9q", UID: "3f2b8f52", FieldPath: "spec.containers{nginx}"},
			FirstTimestamp: metav1.Unix(1767225600, 0), LastTimestamp: metav1.Unix(1767225660, 0),
			Series: &corev1.EventSeries{Count: 9, LastObservedTime: metav1.NewMicroTime(time.Unix(1767225670, 123000))}},
	}
}

func pack(t *testing.T, obj k8sruntime.Object) *compact.Object {
	t.Helper()
	o, err := compact.Pack(obj.DeepCopyObject())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestPackUnpackRoundTrips checks that every kind reads back whole and equal, through Unpack and
// through DeepCopyObject (what the cache's Get and List call), and that the identity getters
// answer without decoding what the typed object says.
func TestPackUnpackRoundTrips(t *testing.T) {
	for _, obj := range objects() {
		t.Run(fmt.Sprintf("%T", obj), func(t *testing.T) {
			g := NewWithT(t)
			o := pack(t, obj)
			back, err := o.Unpack()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(apiequality.Semantic.DeepEqual(back, obj)).To(BeTrue(), "got %#v", back)
			g.Expect(apiequality.Semantic.DeepEqual(o.DeepCopyObject(), obj)).To(BeTrue())
			g.Expect(o.DeepCopyObject()).NotTo(BeIdenticalTo(o.DeepCopyObject()), "a new object on every call")

			m := obj.(metav1.Object)
			g.Expect(o.GetName()).To(Equal(m.GetName()))
			g.Expect(o.GetNamespace()).To(Equal(m.GetNamespace()))
			g.Expect(o.GetUID()).To(Equal(m.GetUID()))
			g.Expect(o.GetResourceVersion()).To(Equal(m.GetResourceVersion()))
			g.Expect(o.GetGeneration()).To(Equal(m.GetGeneration()))
			g.Expect(o.GetCreationTimestamp().Time.Equal(m.GetCreationTimestamp().Time)).To(BeTrue())
			g.Expect(o.GetDeletionTimestamp().Equal(m.GetDeletionTimestamp())).To(BeTrue())
			g.Expect(o.GetLabels()).To(Equal(m.GetLabels()))
			g.Expect(o.GetAnnotations()).To(Equal(m.GetAnnotations()))
			g.Expect(o.GetOwnerReferences()).To(Equal(m.GetOwnerReferences()))
			g.Expect(o.GetManagedFields()).To(Equal(m.GetManagedFields()))
		})
	}
}

// TestPackKeepsWhatItCannotHoldAsValues checks that a UID that is not a canonical UUID, a
// resourceVersion that is not a canonical decimal, and zero timestamps read back unchanged.
func TestPackKeepsWhatItCannotHoldAsValues(t *testing.T) {
	g := NewWithT(t)
	for _, m := range []metav1.ObjectMeta{
		{Name: "a", UID: "uid-1", ResourceVersion: "007"},
		{Name: "b", UID: "3F2B8F52-6C1E-4B7E-9A51-2F0D6C1B9E11", ResourceVersion: "abc"},
		{Name: "c"},
		{Name: "d", CreationTimestamp: metav1.NewTime(time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC))},
	} {
		pod := &corev1.Pod{ObjectMeta: m}
		o := pack(t, pod)
		back, err := o.Unpack()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(apiequality.Semantic.DeepEqual(back, pod)).To(BeTrue(), "%s: got %#v", m.Name, back)
		g.Expect(o.GetUID()).To(Equal(m.UID))
		g.Expect(o.GetResourceVersion()).To(Equal(m.ResourceVersion))
		g.Expect(o.GetCreationTimestamp().Time.Equal(m.CreationTimestamp.Time)).To(BeTrue())
		g.Expect(o.GetDeletionTimestamp()).To(BeNil())
	}
}

// TestSettersChangeWhatTheyName checks that every setter, whether of a field held as a value or
// in the encoding, changes that field and nothing else.
func TestSettersChangeWhatTheyName(t *testing.T) {
	g := NewWithT(t)
	want := objects()[0].(*corev1.Pod)
	o := pack(t, want)
	want = want.DeepCopy()
	now := metav1.Unix(1767300000, 0)
	o.SetName("renamed")
	want.Name = "renamed"
	o.SetNamespace("other")
	want.Namespace = "other"
	o.SetUID(types.UID("uid-2"))
	want.UID = "uid-2"
	o.SetResourceVersion("9")
	want.ResourceVersion = "9"
	o.SetGeneration(4)
	want.Generation = 4
	o.SetLabels(map[string]string{"app": "api"})
	want.Labels = map[string]string{"app": "api"}
	o.SetAnnotations(nil)
	want.Annotations = nil
	o.SetDeletionTimestamp(&now)
	want.DeletionTimestamp = &now
	o.SetFinalizers([]string{"f"})
	want.Finalizers = []string{"f"}
	back, err := o.Unpack()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(apiequality.Semantic.DeepEqual(back, want)).To(BeTrue(), "got %#v", back)
}

// TestPackRefusesOtherKinds names the Go type it cannot hold.
func TestPackRefusesOtherKinds(t *testing.T) {
	g := NewWithT(t)
	_, err := compact.Pack(&corev1.ConfigMap{})
	g.Expect(err).To(MatchError(ContainSubstring("*v1.ConfigMap is not a kind held compactly")))
	g.Expect(compact.Holds(&corev1.ConfigMap{})).To(BeFalse())
	g.Expect(compact.Holds(&corev1.Pod{})).To(BeTrue())
}

// heldBytes returns the heap bytes that n objects made by make and held as hold returns stay
// in use, per object.
func heldBytes(n int, make func(i int) k8sruntime.Object, hold func(k8sruntime.Object) any) float64 {
	keep := make2(n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		keep[i] = hold(make(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

func make2(n int) []any { return make([]any, n) }

// podOfReplicaSet is pod i of the bench's shape: two per ReplicaSet, each with its own name, UID
// and resourceVersion.
func podOfReplicaSet(i int) k8sruntime.Object {
	pod := objects()[0].(*corev1.Pod).DeepCopy()
	pod.DeletionTimestamp = nil
	pod.Name = fmt.Sprintf("web-%04d-5d8f7c9b4-%05d", i/2, i)
	pod.UID = types.UID(fmt.Sprintf("3f2b8f52-6c1e-4b7e-9a51-%012d", i))
	pod.ResourceVersion = fmt.Sprint(100000 + i)
	pod.Labels = map[string]string{"app": "web", "name": fmt.Sprintf("web-%04d", i/2), "pod-template-hash": "5d8f7c9b4"}
	pod.OwnerReferences[0].Name = fmt.Sprintf("web-%04d-5d8f7c9b4", i/2)
	return pod
}

// TestCompactPodsShareTheirReplicaSetsPart checks that two pods of one ReplicaSet hold their
// shared part once: the heap held per compact pod is a fraction of the typed pod's.
func TestCompactPodsShareTheirReplicaSetsPart(t *testing.T) {
	g := NewWithT(t)
	const n = 2000
	typed := heldBytes(n, podOfReplicaSet, func(o k8sruntime.Object) any { return o })
	held := heldBytes(n, podOfReplicaSet, func(o k8sruntime.Object) any {
		c, err := compact.Pack(o)
		g.Expect(err).NotTo(HaveOccurred())
		return c
	})
	t.Logf("heap held per pod: typed %.0f B, compact %.0f B", typed, held)
	g.Expect(held).To(BeNumerically("<", typed/4))

	// A CNI such as Calico records each pod's own address and container in its annotations:
	// those are held per pod, and the spec and the ReplicaSet's metadata are still shared.
	withOwnAnnotations := func(i int) k8sruntime.Object {
		pod := podOfReplicaSet(i).(*corev1.Pod)
		pod.Annotations = map[string]string{"cni.projectcalico.org/podIP": fmt.Sprintf("10.1.%d.%d/32", i/250, i%250),
			"cni.projectcalico.org/containerID": fmt.Sprintf("%064d", i)}
		return pod
	}
	typed = heldBytes(n, withOwnAnnotations, func(o k8sruntime.Object) any { return o })
	held = heldBytes(n, withOwnAnnotations, func(o k8sruntime.Object) any {
		c, err := compact.Pack(o)
		g.Expect(err).NotTo(HaveOccurred())
		return c
	})
	t.Logf("heap held per pod with annotations of its own: typed %.0f B, compact %.0f B", typed, held)
	g.Expect(held).To(BeNumerically("<", typed/4))
}

// BenchmarkHeldPerObject reports the heap one pod and one Deployment of the bench's shape hold in
// the cache, typed and compact (B/object), and what a compact pod costs to decode.
func BenchmarkHeldPerObject(b *testing.B) {
	deployment := func(i int) k8sruntime.Object {
		d := objects()[1].(*appsv1.Deployment).DeepCopy()
		d.Name = fmt.Sprintf("web-%04d", i)
		d.UID = types.UID(fmt.Sprintf("3f2b8f52-6c1e-4b7e-9a51-%012d", i))
		d.ResourceVersion = fmt.Sprint(100000 + i)
		d.Spec.Template.Labels = map[string]string{"app": "web", "name": d.Name}
		return d
	}
	pack := func(o k8sruntime.Object) any {
		c, err := compact.Pack(o)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	typedObject := func(o k8sruntime.Object) any { return o }
	for range b.N {
		b.ReportMetric(heldBytes(5000, podOfReplicaSet, typedObject), "B/typed-pod")
		b.ReportMetric(heldBytes(5000, podOfReplicaSet, pack), "B/compact-pod")
		b.ReportMetric(heldBytes(5000, deployment, typedObject), "B/typed-deployment")
		b.ReportMetric(heldBytes(5000, deployment, pack), "B/compact-deployment")
	}
	c := pack(podOfReplicaSet(1)).(*compact.Object)
	start := time.Now()
	for range 1000 {
		_ = c.DeepCopyObject()
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/1000, "ns/decode-pod")
}
