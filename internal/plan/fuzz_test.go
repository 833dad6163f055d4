package plan

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// FuzzSelector checks the selector handling against admission: a selector whose every key is a
// qualified name and every value a label value, with In or NotIn and values (what the CRD's CEL
// rules admit), must give the operator a labels.Selector; no selector may panic.
func FuzzSelector(f *testing.F) {
	f.Add("app", "web", "In", "tier", "front")
	f.Add("example.com/app", "", "Exists", "bad key!", "my web")
	f.Add("", "x", "NotIn", "a/b/c", "-")
	f.Fuzz(func(t *testing.T, key, value, operator, exprKey, exprValue string) {
		p := &v1alpha1.ProbeRedirectPolicy{Spec: v1alpha1.ProbeRedirectPolicySpec{Selector: &v1alpha1.LabelSelector{
			MatchLabels: map[string]v1alpha1.LabelValue{key: v1alpha1.LabelValue(value)},
			MatchExpressions: []v1alpha1.LabelSelectorRequirement{{
				Key: exprKey, Operator: v1alpha1.LabelSelectorOperator(operator), Values: []v1alpha1.LabelValue{v1alpha1.LabelValue(exprValue)},
			}},
		}}}
		admitted := len(validation.IsQualifiedName(key)) == 0 && len(validation.IsValidLabelValue(value)) == 0 &&
			len(validation.IsQualifiedName(exprKey)) == 0 && len(validation.IsValidLabelValue(exprValue)) == 0 &&
			(operator == "In" || operator == "NotIn")
		sel, err := selectorOf(p)
		if admitted && err != nil {
			t.Fatalf("admission would accept %+v, but the operator cannot use it: %v", p.Spec.Selector, err)
		}
		if err == nil {
			_ = sel.Matches(labels.Set{key: value, exprKey: exprValue})
		}
		back := v1alpha1.FromLabelSelector(p.Spec.Selector.AsLabelSelector())
		if len(back.MatchLabels) != 1 || len(back.MatchExpressions) != 1 {
			t.Fatalf("round trip lost parts: %+v -> %+v", p.Spec.Selector, back)
		}
	})
}
