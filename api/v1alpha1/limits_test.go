package v1alpha1_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// TestMarkersMatchConstants reads the generated CRD and checks that every default and limit the
// kubebuilder markers put there equals the Go constant the operator's code uses.
func TestMarkersMatchConstants(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(yaml.Unmarshal(raw, crd)).To(Succeed())
	g.Expect(crd.Spec.Versions).To(HaveLen(1))
	root := *crd.Spec.Versions[0].Schema.OpenAPIV3Schema

	// at walks a dotted path of properties; "[]" steps into a list's items.
	at := func(path string) apiextensionsv1.JSONSchemaProps {
		s := root
		for _, step := range strings.Split(path, ".") {
			if step == "[]" {
				g.Expect(s.Items).NotTo(BeNil(), path)
				s = *s.Items.Schema
				continue
			}
			next, ok := s.Properties[step]
			g.Expect(ok).To(BeTrue(), "%s: no property %q", path, step)
			s = next
		}
		return s
	}
	defaultOf := func(path string) any {
		s := at(path)
		g.Expect(s.Default).NotTo(BeNil(), "%s has no default", path)
		var v any
		g.Expect(json.Unmarshal(s.Default.Raw, &v)).To(Succeed())
		return v
	}
	number := func(v *float64) float64 {
		g.Expect(v).NotTo(BeNil())
		return *v
	}
	length := func(v *int64) int64 {
		g.Expect(v).NotTo(BeNil())
		return *v
	}

	g.Expect(defaultOf("spec.rollout.maxConcurrent")).To(BeEquivalentTo(v1alpha1.DefaultMaxConcurrent))
	g.Expect(number(at("spec.rollout.maxConcurrent").Minimum)).To(BeEquivalentTo(1))
	g.Expect(number(at("spec.rollout.maxConcurrent").Maximum)).To(BeEquivalentTo(v1alpha1.MaxConcurrentLimit))
	g.Expect(defaultOf("spec.rollout.progressDeadlineSeconds")).To(BeEquivalentTo(v1alpha1.DefaultProgressDeadlineSeconds))
	g.Expect(number(at("spec.rollout.progressDeadlineSeconds").Minimum)).To(BeEquivalentTo(v1alpha1.MinProgressDeadlineSeconds))
	g.Expect(number(at("spec.rollout.progressDeadlineSeconds").Maximum)).To(BeEquivalentTo(v1alpha1.MaxProgressDeadlineSeconds))
	g.Expect(defaultOf("spec.rollout.pauseOnFailure")).To(Equal(v1alpha1.DefaultPauseOnFailure))
	g.Expect(defaultOf("spec.trigger")).To(BeEquivalentTo(v1alpha1.DefaultTrigger))
	g.Expect(defaultOf("spec.onDelete")).To(BeEquivalentTo(v1alpha1.DefaultOnDelete))
	g.Expect(defaultOf("spec.workloadKinds")).To(Equal(strings2any(v1alpha1.DefaultWorkloadKinds())))
	g.Expect(defaultOf("spec.probeTypes")).To(Equal(strings2any(v1alpha1.DefaultProbeTypes())))
	g.Expect(length(at("spec.workloadKinds").MaxItems)).To(BeEquivalentTo(len(v1alpha1.DefaultWorkloadKinds())))
	g.Expect(length(at("spec.probeTypes").MaxItems)).To(BeEquivalentTo(len(v1alpha1.DefaultProbeTypes())))

	for path, want := range map[string]int{
		"status.workloads":           v1alpha1.MaxWorkloadEntries,
		"status.rollouts":            v1alpha1.MaxWorkloadEntries,
		"status.unhealthyPods":       v1alpha1.MaxUnhealthyPodEntries,
		"status.workloads.[].probes": v1alpha1.MaxProbeEntries,
		"status.conditions":          v1alpha1.MaxConditions,
	} {
		g.Expect(length(at(path).MaxItems)).To(BeEquivalentTo(want), path)
	}
	for path, want := range map[string]int{
		"status.workloads.[].message":             v1alpha1.MaxMessageLength,
		"status.workloads.[].probes.[].message":   v1alpha1.MaxMessageLength,
		"status.unhealthyPods.[].lastMessage":     v1alpha1.MaxMessageLength,
		"status.workloads.[].probes.[].original":  v1alpha1.MaxTargetLength,
		"status.workloads.[].probes.[].rewritten": v1alpha1.MaxTargetLength,
		"status.workloads.[].reason":              v1alpha1.MaxReasonLength,
		"status.workloads.[].probes.[].reason":    v1alpha1.MaxReasonLength,
		"status.workloads.[].name":                v1alpha1.MaxNameLength,
		"status.workloads.[].probes.[].container": v1alpha1.MaxNameLength,
		"status.unhealthyPods.[].pod":             v1alpha1.MaxNameLength,
		"status.unhealthyPods.[].workload":        v1alpha1.MaxNameLength,
		"status.rollouts.[].name":                 v1alpha1.MaxNameLength,
	} {
		g.Expect(length(at(path).MaxLength)).To(BeEquivalentTo(want), path)
	}
	// Every enum the status uses lists exactly the constants the code writes.
	enum := func(path string) []string {
		var out []string
		for _, v := range at(path).Enum {
			var s string
			g.Expect(json.Unmarshal(v.Raw, &s)).To(Succeed())
			out = append(out, s)
		}
		return out
	}
	g.Expect(enum("spec.workloadKinds.[]")).To(ConsistOf(strings2any(v1alpha1.DefaultWorkloadKinds())...))
	g.Expect(enum("spec.probeTypes.[]")).To(ConsistOf(strings2any(v1alpha1.DefaultProbeTypes())...))
}

func strings2any[S ~string](list []S) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = string(s)
	}
	return out
}
