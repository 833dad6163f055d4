package argocd

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/health"
	"github.com/proberedirect/probe-redirect-operator/test/argocd/argo"
)

const (
	argoCDv2           = "github.com/argoproj/argo-cd/v2"
	argoCDv3           = "github.com/argoproj/argo-cd/v3"
	gitopsEngineModule = "github.com/argoproj/gitops-engine"
)

// linkedVersion is the version of module that fn was compiled from, read from the path of its source file in the
// module cache (.../module@version/...). Test binaries carry no module list for runtime/debug.ReadBuildInfo.
func linkedVersion(t *testing.T, module string, fn any) string {
	t.Helper()
	pc := reflect.ValueOf(fn).Pointer()
	file, _ := runtime.FuncForPC(pc).FileLine(pc)
	_, after, found := strings.Cut(filepath.ToSlash(file), module+"@")
	if !found {
		t.Fatalf("%s is not compiled from module %s", file, module)
	}
	version, _, _ := strings.Cut(after, "/")
	return version
}

// TestREADMENamesTestedVersion checks that the README's Argo CD section names the Argo CD version this run links, so
// that its "Tested with" line stays true when go.mod or argocd-v2.14.mod moves.
func TestREADMENamesTestedVersion(t *testing.T) {
	argoCD := linkedVersion(t, argo.Module, argo.StateDiff)
	t.Logf("Argo CD %s %s with gitops-engine %s", argo.Module, argoCD, linkedVersion(t, gitopsEngineModule, health.GetResourceHealth))
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "**Argo CD.**")
	end := strings.Index(readme, "\n## The API")
	if start < 0 || end < start {
		t.Fatal("README.md has no **Argo CD.** paragraph before ## The API")
	}
	if !strings.Contains(readme[start:end], "**"+argoCD+"**") {
		t.Errorf("README.md's Argo CD section does not name **%s**, the version this run tests", argoCD)
	}
}
