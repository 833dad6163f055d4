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

package controllers_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/controllers"
	"github.com/proberedirect/probe-redirect-operator/internal/compact"
)

// fixtureEvents are kubelet Unhealthy events about pods, as the kubelet's recorder writes them
// (count and timestamps, or a series), with the fields the report does not read set too.
func fixtureEvents() []client.Object {
	at := metav1.Unix(1767225600, 0)
	var out []client.Object
	for i, fieldPath := range []string{"spec.containers{app}", "spec.initContainers{istio-proxy}", ""} {
		e := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-1.%d", i), Namespace: "shop", UID: "8b0c5a2e-7f1d-4e5a-9c3b-1a2b3c4d5e6f",
				ResourceVersion: fmt.Sprint(900 + i), CreationTimestamp: at,
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1", UID: "pod-uid", APIVersion: "v1", FieldPath: fieldPath},
			Reason:         "Unhealthy", Type: corev1.EventTypeWarning, Count: int32(3 + i),
			Message:        "Readiness probe failed: HTTP probe failed with statuscode: 503",
			FirstTimestamp: at, LastTimestamp: metav1.NewTime(at.Add(time.Duration(i) * time.Minute)),
			Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, ReportingController: "kubelet", ReportingInstance: "node-1",
		}
		if i == 2 {
			e.Series = &corev1.EventSeries{Count: 12, LastObservedTime: metav1.NewMicroTime(at.Add(5 * time.Minute))}
			e.EventTime = metav1.NewMicroTime(at.Time)
		}
		out = append(out, e)
	}
	return out
}

// TestCompactedHoldsTheSlimObject checks, on every pod and workload made from Istio's and Kuma's
// golden files and on kubelet events, that the cache's compact object reads back (through
// DeepCopyObject, which the cache's Get and List call) exactly as the slim object, which
// TestSlimPodKeepsEveryDecision, TestSlimWorkloadKeepsEveryDecision and the reconciler tests
// judge; that it keeps the identity the informer reads; and that the transform leaves an object
// it compacted already as it is.
func TestCompactedHoldsTheSlimObject(t *testing.T) {
	var objs []client.Object
	names := []string{}
	pods := fixturePods(t)
	for name := range pods {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		pod := pods[name]
		pod.Name, pod.Namespace, pod.UID, pod.ResourceVersion = fmt.Sprintf("pod-%d", i), "shop", "3f2b8f52-6c1e-4b7e-9a51-2f0d6c1b9e11", "12"
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}
		objs = append(objs, pod)
	}
	objs = append(objs, fixtureWorkloads(t)...)
	objs = append(objs, fixtureEvents()...)

	g := NewWithT(t)
	kinds := map[string]int{}
	for _, obj := range objs {
		var slim toolscache.TransformFunc
		switch obj.(type) {
		case *corev1.Pod:
			slim = controllers.SlimPod
		case *corev1.Event:
			slim = controllers.SlimEvent
		default:
			slim = controllers.SlimWorkload
		}
		want, err := slim(obj.DeepCopyObject())
		g.Expect(err).NotTo(HaveOccurred())
		// The kind and apiVersion are not held: the cache sets them on every object it returns.
		want.(runtime.Object).GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		out, err := controllers.Compacted(slim)(obj.DeepCopyObject())
		g.Expect(err).NotTo(HaveOccurred())
		c, ok := out.(*compact.Object)
		g.Expect(ok).To(BeTrue(), "%T is held compactly", obj)
		kinds[c.Kind()]++

		read := c.DeepCopyObject()
		g.Expect(read).To(BeAssignableToTypeOf(obj))
		g.Expect(apiequality.Semantic.DeepEqual(read, want)).To(BeTrue(), "%s %s reads back as its slim object: %s", c.Kind(), obj.GetName(), cmp.Diff(want, read))
		g.Expect(c.GetName()).To(Equal(obj.GetName()))
		g.Expect(c.GetNamespace()).To(Equal(obj.GetNamespace()))
		g.Expect(c.GetUID()).To(Equal(obj.GetUID()))
		g.Expect(c.GetResourceVersion()).To(Equal(obj.GetResourceVersion()))
		g.Expect(c.GetGeneration()).To(Equal(obj.GetGeneration()))

		again, err := controllers.Compacted(slim)(out)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(again).To(BeIdenticalTo(out))
	}
	g.Expect(kinds).To(HaveKey("Pod"))
	g.Expect(kinds).To(HaveKey("Deployment"))
	g.Expect(kinds).To(HaveKey("StatefulSet"))
	g.Expect(kinds).To(HaveKey("DaemonSet"))
	g.Expect(kinds).To(HaveKey("Event"))
}

// TestSlimEventKeepsTheReport checks that a slim event keeps what the Unhealthy report reads and
// drops what it does not.
func TestSlimEventKeepsTheReport(t *testing.T) {
	g := NewWithT(t)
	for _, obj := range fixtureEvents() {
		e := obj.(*corev1.Event)
		out, err := controllers.SlimEvent(e.DeepCopy())
		g.Expect(err).NotTo(HaveOccurred())
		slim := out.(*corev1.Event)
		g.Expect(slim.InvolvedObject).To(Equal(e.InvolvedObject))
		g.Expect([]any{slim.Reason, slim.Message, slim.Type, slim.Count, slim.Series, slim.EventTime, slim.FirstTimestamp, slim.LastTimestamp}).
			To(Equal([]any{e.Reason, e.Message, e.Type, e.Count, e.Series, e.EventTime, e.FirstTimestamp, e.LastTimestamp}))
		g.Expect(slim.ManagedFields).To(BeNil())
		g.Expect(slim.Source).To(Equal(corev1.EventSource{}))
		g.Expect(slim.ReportingController).To(BeEmpty())
	}
	cm := &corev1.ConfigMap{}
	out, err := controllers.SlimEvent(cm)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeIdenticalTo(runtime.Object(cm)))
}

// TestCompactedOnlySlimsUnderTheMutationDetector checks that with client-go's cache mutation
// detector on, which compares a cached object with its DeepCopyObject, the cache holds slim typed
// objects and no compact ones.
func TestCompactedOnlySlimsUnderTheMutationDetector(t *testing.T) {
	t.Setenv("KUBE_CACHE_MUTATION_DETECTOR", "true")
	out, err := controllers.Compacted(controllers.SlimPod)(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(out).To(BeAssignableToTypeOf(&corev1.Pod{}))
}
