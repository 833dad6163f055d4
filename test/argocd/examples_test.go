package argocd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/sync/syncwaves"
	"github.com/proberedirect/probe-redirect-operator/test/argocd/argo"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestApplicationExample checks config/argocd/application-example.yaml with Argo CD's own types: two valid
// Applications, the operator in an earlier sync wave than the policies (read by gitops-engine's syncwaves.Wave),
// and source paths that exist in this repository.
func TestApplicationExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(ArgoCDDir(), "application-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("want 2 Applications, got %d YAML documents", len(docs))
	}
	waves := map[string]int{}
	for _, doc := range docs {
		var app argo.Application
		if err := yaml.UnmarshalStrict([]byte(doc), &app); err != nil {
			t.Fatalf("not an Argo CD Application: %v", err)
		}
		if app.Kind != "Application" || app.Spec.Source == nil || app.Spec.Destination.Server == "" {
			t.Fatalf("incomplete Application %q", app.Name)
		}
		if _, err := os.Stat(filepath.Join(RepoRoot(), app.Spec.Source.Path, "kustomization.yaml")); err != nil {
			t.Errorf("Application %s: source path %s is not a kustomization in this repository", app.Name, app.Spec.Source.Path)
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		waves[app.Name] = syncwaves.Wave(&unstructured.Unstructured{Object: obj})
	}
	op, okOp := waves["probe-redirect-operator"]
	pol, okPol := waves["probe-redirect-policies"]
	if !okOp || !okPol || op != -1 || pol != 0 {
		t.Errorf("sync waves %v: want probe-redirect-operator -1 and probe-redirect-policies 0", waves)
	}
}
