package packaging

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// TestEveryFieldIsDocumented walks the CRD's schema: `kubectl explain proberedirectpolicy.spec`
// (and .status) shows a description for every field.
func TestEveryFieldIsDocumented(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(yaml.Unmarshal(data, crd)).To(Succeed())
	g.Expect(crd.Spec.Versions).To(HaveLen(1))
	root := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	var undocumented []string
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		for name, child := range s.Properties {
			p := path + "." + name
			if child.Description == "" && p != ".apiVersion" && p != ".kind" && p != ".metadata" {
				undocumented = append(undocumented, p)
			}
			walk(p, child)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", *s.Items.Schema)
		}
	}
	walk("", *root)
	g.Expect(undocumented).To(BeEmpty(), "fields without a description")

	spec := root.Properties["spec"]
	g.Expect(spec.Required).To(ContainElement("selector"))
	for _, field := range []string{"selector", "workloadKinds", "probeTypes", "trigger", "rollout", "suspend", "onDelete"} {
		g.Expect(spec.Properties).To(HaveKey(field))
	}
}
