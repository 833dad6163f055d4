package plan_test

import (
	"reflect"
	"testing"

	. "github.com/onsi/gomega"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// TestWorkloadKindsTable checks that the table has one consistent row for every kind the API
// admits, in rollout order.
func TestWorkloadKindsTable(t *testing.T) {
	g := NewWithT(t)
	var kinds []v1alpha1.WorkloadKind
	for i := range plan.WorkloadKinds {
		k := &plan.WorkloadKinds[i]
		kinds = append(kinds, k.Kind)
		g.Expect(plan.KindOf(k.Kind)).To(BeIdenticalTo(k))
		obj := k.NewObject()
		g.Expect(reflect.TypeOf(obj).Elem().Name()).To(Equal(string(k.Kind)))
		list := k.NewList()
		g.Expect(reflect.TypeOf(list).Elem().Name()).To(Equal(string(k.Kind) + "List"))
		g.Expect(k.Items(list)).To(BeEmpty())

		config, generation := k.Apply("web", "shop", corev1ac.PodTemplateSpec().WithAnnotations(map[string]string{"a": "b"}))
		g.Expect(config).NotTo(BeNil())
		g.Expect(generation()).To(BeNil(), "no answer from the API server yet")
		g.Expect(reflect.TypeOf(config).Elem().Name()).To(Equal(string(k.Kind) + "ApplyConfiguration"))
	}
	g.Expect(kinds).To(Equal(v1alpha1.DefaultWorkloadKinds()), "every kind the API admits, in rollout order")
	g.Expect(plan.KindOf("Job")).To(BeNil())
}
