package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestManagesRewriteAnnotation(t *testing.T) {
	const operator = FieldOwner
	withPath := `{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:sidecar.istio.io/rewriteAppHTTPProbers":{}}}}}}`
	otherAnnotation := `{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:prometheus.io/scrape":{}}}}}}`
	topLevelAnnotation := `{"f:metadata":{"f:annotations":{"f:sidecar.istio.io/rewriteAppHTTPProbers":{}}}}`
	entry := func(manager, fields string) metav1.ManagedFieldsEntry {
		e := metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "apps/v1", FieldsType: "FieldsV1"}
		if fields != "" {
			e.FieldsV1 = metav1.NewFieldsV1(fields)
		}
		return e
	}
	tests := []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    bool
	}{
		{"operator owns the annotation", []metav1.ManagedFieldsEntry{entry(operator, withPath)}, true},
		{"among other entries", []metav1.ManagedFieldsEntry{entry("kubectl-client-side-apply", otherAnnotation), entry(operator, withPath)}, true},
		{"operator owns other fields only", []metav1.ManagedFieldsEntry{entry(operator, otherAnnotation)}, false},
		{"the annotation on the workload, not the template", []metav1.ManagedFieldsEntry{entry(operator, topLevelAnnotation)}, false},
		{"another manager owns it", []metav1.ManagedFieldsEntry{entry("kubectl-edit", withPath)}, false},
		{"no FieldsV1", []metav1.ManagedFieldsEntry{entry(operator, "")}, false},
		{"FieldsV1 is not JSON", []metav1.ManagedFieldsEntry{entry(operator, "not json")}, false},
		{"a path segment is not an object", []metav1.ManagedFieldsEntry{entry(operator, `{"f:spec":{"f:template":"x"}}`)}, false},
		{"no managedFields", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", ManagedFields: tt.entries}}
			g.Expect(managesRewriteAnnotation(d, operator)).To(Equal(tt.want))
		})
	}
}
