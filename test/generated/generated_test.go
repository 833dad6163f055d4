// Package generated checks that the committed generated files (CRD, ClusterRole, DeepCopy) match
// what controller-gen makes from the markers today; run `make manifests generate` to refresh them.
package generated

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

func TestGeneratedFilesAreUpToDate(t *testing.T) {
	g := NewWithT(t)
	root := testenv.RepoRoot()
	controllerGen := os.Getenv("CONTROLLER_GEN")
	if controllerGen == "" {
		controllerGen = filepath.Join(root, "bin", "controller-gen")
	}
	_, err := os.Stat(controllerGen)
	g.Expect(err).NotTo(HaveOccurred(), "controller-gen is built by `make controller-gen` (make test does it)")

	out := t.TempDir()
	cmd := exec.Command(controllerGen,
		"object:headerFile=hack/boilerplate.go.txt", "paths=./api/...", "output:object:dir="+filepath.Join(out, "object"),
		"rbac:roleName=manager-role", "output:rbac:dir="+filepath.Join(out, "rbac"),
		"crd", "paths=./api/...;./controllers/...", "output:crd:dir="+filepath.Join(out, "crd"))
	cmd.Dir = root
	output, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(output))

	for generated, committed := range map[string]string{
		"object/zz_generated.deepcopy.go":                      "api/v1alpha1/zz_generated.deepcopy.go",
		"rbac/role.yaml":                                       "config/rbac/role.yaml",
		"crd/mesh.proberedirect.io_proberedirectpolicies.yaml": "config/crd/bases/mesh.proberedirect.io_proberedirectpolicies.yaml",
	} {
		want, err := os.ReadFile(filepath.Join(out, generated))
		g.Expect(err).NotTo(HaveOccurred())
		got, err := os.ReadFile(filepath.Join(root, committed))
		g.Expect(err).NotTo(HaveOccurred(), "%s is missing: run `make manifests generate`", committed)
		g.Expect(string(got)).To(Equal(string(want)), "%s is stale: run `make manifests generate` and commit the result", committed)
	}
}
