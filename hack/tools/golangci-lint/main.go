// Command golangci-lint-kal is golangci-lint v2 with the Kubernetes API linter
// (sigs.k8s.io/kube-api-linter) compiled in as a module plugin, i.e. what
// `golangci-lint custom` would produce, without its git clone. See ../README.md.
//
// main is upstream's cmd/golangci-lint/main.go: build the version info, then
// hand over to pkg/commands.Execute. The only addition is the blank import of
// the plugin package (plugins.go), whose init registers "kubeapilinter".
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/golangci/golangci-lint/v2/pkg/commands"
	"github.com/golangci/golangci-lint/v2/pkg/exitcodes"
)

const (
	golangciLintModule  = "github.com/golangci/golangci-lint/v2"
	kubeAPILinterModule = "sigs.k8s.io/kube-api-linter"
)

func main() {
	if err := commands.Execute(buildInfo()); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "The command is terminated due to an error: %v\n", err)
		os.Exit(exitcodes.Failure)
	}
}

// buildInfo reports the pinned golangci-lint and kube-api-linter versions
// (read from the binary's module dependencies; this wrapper module itself is
// unversioned, so upstream's use of the main module's version would print
// "(devel)").
func buildInfo() commands.BuildInfo {
	info := commands.BuildInfo{
		Version:   "unknown",
		Commit:    "?",
		GoVersion: "unknown",
		Date:      "(unknown)",
	}

	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}

	info.GoVersion = bi.GoVersion

	kal := "unknown"
	for _, dep := range bi.Deps {
		switch dep.Path {
		case golangciLintModule:
			info.Version = strings.TrimPrefix(dep.Version, "v")
			info.Commit = fmt.Sprintf("(mod sum: %q)", dep.Sum)
		case kubeAPILinterModule:
			kal = dep.Version
		}
	}

	info.Version += ", kube-api-linter " + kal

	return info
}
