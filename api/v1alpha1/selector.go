package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelSelector is metav1.LabelSelector (the same JSON) with bounds on its sizes, so that the
// API server can check every label key and value at admission with Kubernetes' CEL format library
// (format.qualifiedName, format.labelValue; in CRD rules from Kubernetes 1.32) within the CRD's validation cost
// budget. An empty selector selects every workload.
// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || size(self.matchLabels) > 0",message="selector.matchLabels must not be empty: a label written without a value (app:) is dropped by the API server and would select every workload; write selector: {} to select every workload on purpose"
// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) > 0",message="selector.matchExpressions must not be empty; write selector: {} to select every workload on purpose"
// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue())",message="selector.matchLabels keys must be label keys: an optional DNS subdomain prefix and '/', then a name of at most 63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.labelValue().validate(self.matchLabels[k]).hasValue())",message="selector.matchLabels values must be label values: empty, or at most 63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
type LabelSelector struct {
	// matchLabels is a map of label keys and values; a workload matches when its pod template
	// carries every one of them.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	MatchLabels map[string]LabelValue `json:"matchLabels,omitempty"`

	// matchExpressions is a list of label selector requirements; a workload matches when its pod
	// template meets every one of them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelValue is the value of a label: at most 63 characters.
// +kubebuilder:validation:MaxLength=63
type LabelValue string

// LabelSelectorOperator is metav1.LabelSelectorOperator: In, NotIn, Exists or DoesNotExist
// (checked by a rule on the selector, whose message names them).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=12
type LabelSelectorOperator string

// LabelSelectorRequirement is metav1.LabelSelectorRequirement with bounds.
// +kubebuilder:validation:XValidation:rule="!format.qualifiedName().validate(self.key).hasValue()",message="selector.matchExpressions[].key must be a label key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
// +kubebuilder:validation:XValidation:rule="!has(self.values) || self.values.all(v, !format.labelValue().validate(v).hasValue())",message="selector.matchExpressions[].values must be label values: empty, or at most 63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
type LabelSelectorRequirement struct {
	// key is the label key the requirement applies to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	Key string `json:"key,omitempty"`

	// operator is one of In, NotIn, Exists and DoesNotExist.
	// +required
	Operator LabelSelectorOperator `json:"operator,omitempty"`

	// values must be non-empty with In and NotIn, and empty with Exists and DoesNotExist.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Values []LabelValue `json:"values,omitempty"`
}

// AsLabelSelector returns s as a metav1.LabelSelector (nil for nil), for
// metav1.LabelSelectorAsSelector.
func (s *LabelSelector) AsLabelSelector() *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{}
	if s.MatchLabels != nil {
		out.MatchLabels = make(map[string]string, len(s.MatchLabels))
		for k, v := range s.MatchLabels {
			out.MatchLabels[k] = string(v)
		}
	}
	for _, r := range s.MatchExpressions {
		req := metav1.LabelSelectorRequirement{Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator)}
		for _, v := range r.Values {
			req.Values = append(req.Values, string(v))
		}
		out.MatchExpressions = append(out.MatchExpressions, req)
	}
	return out
}

// FromLabelSelector returns s as a LabelSelector (nil for nil), for Go clients that build policies
// from metav1 selectors.
func FromLabelSelector(s *metav1.LabelSelector) *LabelSelector {
	if s == nil {
		return nil
	}
	out := &LabelSelector{}
	if len(s.MatchLabels) > 0 {
		out.MatchLabels = make(map[string]LabelValue, len(s.MatchLabels))
		for k, v := range s.MatchLabels {
			out.MatchLabels[k] = LabelValue(v)
		}
	}
	for _, r := range s.MatchExpressions {
		req := LabelSelectorRequirement{Key: r.Key, Operator: LabelSelectorOperator(r.Operator)}
		for _, v := range r.Values {
			req.Values = append(req.Values, LabelValue(v))
		}
		out.MatchExpressions = append(out.MatchExpressions, req)
	}
	return out
}
