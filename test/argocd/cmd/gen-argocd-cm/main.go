// Command gen-argocd-cm writes config/argocd/argocd-cm-health-patch.yaml from
// config/argocd/resource_customizations/mesh.proberedirect.io/ProbeRedirectPolicy/health.lua.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	argocd "github.com/proberedirect/probe-redirect-operator/test/argocd"
)

func main() {
	script, err := os.ReadFile(filepath.Join(argocd.HealthDir(), "health.lua"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := argocd.RenderHealthPatch(script)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(argocd.HealthPatchPath(), out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("wrote", argocd.HealthPatchPath())
}
