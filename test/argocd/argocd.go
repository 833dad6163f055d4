// Package argocd checks the operator's Argo CD integration with Argo CD's own code (github.com/argoproj/argo-cd and
// github.com/argoproj/gitops-engine): the ProbeRedirectPolicy health check shipped in config/argocd, the argocd-cm
// snippet generated from it, and that the pod-template annotation the operator writes by server-side apply does not
// make Argo CD report workloads OutOfSync.
//
// It is its own Go module so that Argo CD's dependency pins (k8s.io/*) never reach the operator's go.mod, and it has
// two dependency graphs for the same tests:
//
//   - go.mod: Argo CD v3.3 (argo-cd/v3, k8s.io/* v0.34);
//   - argocd-v2.14.mod, used with `go test -modfile=argocd-v2.14.mod`: Argo CD v2.14 (argo-cd/v2, k8s.io/* v0.31).
//
// The tests reach Argo CD only through package .../test/argocd/argo, which each file points at its own directory
// (argo-v3, argo-v2: the same names over each major version), and import gitops-engine directly (same module path
// in both). `go mod tidy` and `go mod tidy -modfile=argocd-v2.14.mod` keep each graph to its own version.
//
// Newer v3 lines do not build as a dependency: from v3.4 argo-cd requires its engine as
// github.com/argoproj/argo-cd/gitops-engine at a pseudo-version of the old gitops-engine repository, which the
// module proxy refuses, and the commits it does serve under that path are from Argo CD's main branch, whose API no
// release line builds against. v3.3.13 and later v3.3 releases call a gitops-engine API that exists only in Argo
// CD's own tree. v3.6 publishes the engine as github.com/argoproj/argo-cd/gitops-engine/v3 but needs Go 1.27.
package argocd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"sigs.k8s.io/yaml"
)

const (
	// HealthKey is the Argo CD resource override key of ProbeRedirectPolicy (lua.GetConfigMapKey).
	HealthKey = "mesh.proberedirect.io/ProbeRedirectPolicy"
	// ArgoCDCMHealthKey is the argocd-cm data key that installs the health check.
	ArgoCDCMHealthKey = "resource.customizations.health.mesh.proberedirect.io_ProbeRedirectPolicy"
	// OperatorFieldManager is the field manager the operator server-side applies workloads with
	// (controllers.FieldOwner in the operator module).
	OperatorFieldManager = "probe-redirect-operator"
	// RewriteAnnotation is the pod-template annotation the operator sets to "true".
	RewriteAnnotation = "sidecar.istio.io/rewriteAppHTTPProbers"
)

// RepoRoot is the top folder of the operator repository.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ArgoCDDir is config/argocd.
func ArgoCDDir() string { return filepath.Join(RepoRoot(), "config", "argocd") }

// HealthDir holds health.lua, health_test.yaml and testdata/ in the layout of Argo CD's resource_customizations.
func HealthDir() string {
	return filepath.Join(ArgoCDDir(), "resource_customizations", "mesh.proberedirect.io", "ProbeRedirectPolicy")
}

// HealthPatchPath is the generated argocd-cm snippet.
func HealthPatchPath() string { return filepath.Join(ArgoCDDir(), "argocd-cm-health-patch.yaml") }

const patchHeader = `# GENERATED from resource_customizations/mesh.proberedirect.io/ProbeRedirectPolicy/health.lua by
# ` + "`cd test/argocd && go run ./cmd/gen-argocd-cm`" + `. Do not edit: TestArgoCDCMHealthPatch fails when the two differ.
#
# Installs the ProbeRedirectPolicy health check into Argo CD:
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file config/argocd/argocd-cm-health-patch.yaml
# or list this file under ` + "`patches:`" + ` in the kustomization that installs Argo CD. With the argo-cd Helm chart, put the
# data key below under ` + "`configs.cm`" + ` in the values instead.
`

// RenderHealthPatch renders the argocd-cm snippet that installs script as the ProbeRedirectPolicy health check.
// It refuses scripts that the YAML literal block cannot carry unchanged.
func RenderHealthPatch(script []byte) ([]byte, error) {
	s := string(script)
	if s == "" {
		return nil, fmt.Errorf("empty health script")
	}
	if strings.ContainsAny(s, "\t\r") {
		return nil, fmt.Errorf("health script contains a tab or carriage return")
	}
	chomp := "" // clip: exactly one final newline
	switch {
	case !strings.HasSuffix(s, "\n"):
		chomp = "-"
	case strings.HasSuffix(s, "\n\n"):
		chomp = "+"
	}
	var b bytes.Buffer
	b.WriteString(patchHeader)
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n  labels:\n")
	b.WriteString("    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\ndata:\n")
	fmt.Fprintf(&b, "  %s: |%s\n", ArgoCDCMHealthKey, chomp)
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + line + "\n")
	}
	out := b.Bytes()

	// Prove the YAML carries the script byte for byte.
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(out, &cm); err != nil {
		return nil, fmt.Errorf("rendered argocd-cm snippet is not YAML: %w", err)
	}
	if cm.Data[ArgoCDCMHealthKey] != s {
		return nil, fmt.Errorf("rendered argocd-cm snippet does not round-trip the script (leading spaces on the first line?)")
	}
	return out, nil
}
