package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

// run runs the command as a user would and returns what it printed and its exit status. Tests
// that use it start with t.Chdir("../..") to run from the repository root.
func run(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand("probe-redirect", strings.NewReader(stdin), &out, &errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	var findings errFindings
	switch {
	case err == nil:
		return out.String(), exitOK
	case errors.As(err, &findings):
		return out.String(), exitFindings
	default:
		return out.String() + errOut.String() + err.Error(), exitError
	}
}

// TestDemo is the issue's own check: the demo's manifests break nginx's probe under STRICT, and
// the demo's policy fixes it.
func TestDemo(t *testing.T) {
	t.Chdir("../..")
	g := NewWithT(t)
	out, code := run(t, "", "analyze", "-f", "hack/demo/")
	g.Expect(code).To(Equal(exitFindings), out)
	g.Expect(out).To(MatchRegexp(`shop\s+Deployment/nginx\s+nginx\s+Readiness\s+HTTP :80/index.html\s+STRICT\s+WillBreak\s+-\s+STRICT mTLS on port 80 rejects the kubelet`))
	g.Expect(out).To(ContainSubstring("1 workload(s), 1 probe(s): 1 will break, 0 fixed by a policy, 0 already redirected."))

	out, code = run(t, "", "analyze", "-f", "hack/demo/", "-f", "hack/demo/fix/policy.yaml")
	g.Expect(code).To(Equal(exitOK), out)
	g.Expect(out).To(MatchRegexp(`FixedByPolicy\s+nginx\s+`))

	out, code = run(t, "", "analyze", "-f", "hack/demo/", "--fail-on", "needs-redirect", "-f", "hack/demo/fix/")
	g.Expect(code).To(Equal(exitFindings), out)
}

func TestStdinContextAndFormats(t *testing.T) {
	t.Chdir("../..")
	g := NewWithT(t)
	shop, err := os.ReadFile("hack/demo/shop.yaml")
	g.Expect(err).NotTo(HaveOccurred())

	// Only the Deployment on standard input; the Namespace and PeerAuthentication as context.
	_, deployment, found := strings.Cut(string(shop), "---\napiVersion: apps/v1\n")
	g.Expect(found).To(BeTrue())
	deployment = "apiVersion: apps/v1\n" + deployment
	out, code := run(t, deployment, "analyze", "-f", "-", "-n", "shop", "--context-file", "hack/demo/shop.yaml", "-o", "json")
	g.Expect(code).To(Equal(exitFindings), out)
	var report struct {
		Workloads []struct {
			Name, Verdict string
			Source        struct{ File string }
			Probes        []struct {
				Need   string
				Breaks bool
			}
		}
	}
	g.Expect(json.Unmarshal([]byte(out), &report)).To(Succeed())
	g.Expect(report.Workloads).To(HaveLen(1), "the context file's own workload is not judged")
	g.Expect(report.Workloads[0].Verdict).To(Equal("WillBreak"))
	g.Expect(report.Workloads[0].Source.File).To(Equal("-"))
	g.Expect(report.Workloads[0].Probes[0].Need).To(Equal("StrictMTLS"))

	out, code = run(t, "", "analyze", "-f", "hack/demo/", "-o", "sarif")
	g.Expect(code).To(Equal(exitFindings))
	log, err := sarif.FromString(out)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(log.Validate()).To(Succeed(), "a valid SARIF 2.1.0 log")
	g.Expect(log.Runs).To(HaveLen(1))
	g.Expect(log.Runs[0].Results).To(HaveLen(1))
	result := log.Runs[0].Results[0]
	g.Expect(*result.RuleID).To(Equal("WillBreak"))
	g.Expect(result.Level).To(Equal("error"))
	g.Expect(*result.Locations[0].PhysicalLocation.ArtifactLocation.URI).To(Equal("hack/demo/shop.yaml"))
	g.Expect(*result.Locations[0].PhysicalLocation.Region.StartLine).To(Equal(22), "the Deployment's document starts there")
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"analyze"}, `required flag(s) "filename" not set`},
		{"missing file", []string{"analyze", "-f", "nope.yaml"}, "nope.yaml: no such file or directory"},
		{"bad fail-on", []string{"analyze", "-f", "hack/demo/", "--fail-on", "sometimes"}, "--fail-on=sometimes: use one of break, needs-redirect, never"},
		{"bad output", []string{"analyze", "-f", "hack/demo/", "-o", "xml"}, "--output=xml: use one of table, json, sarif"},
		{"bad Istio version", []string{"analyze", "-f", "hack/demo/", "--istio-version", "latest"}, "--istio-version=latest"},
		{"not a manifest", []string{"analyze", "-f", "go.mod"}, ""},
	}
	t.Chdir("../..")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			out, code := run(t, "", tt.args...)
			if tt.want == "" {
				// A file named on the command line is read whatever its extension.
				g.Expect(code).To(Equal(exitError), out)
				return
			}
			g.Expect(code).To(Equal(exitError), out)
			g.Expect(out).To(ContainSubstring(tt.want))
		})
	}
}

func TestKubectlPluginName(t *testing.T) {
	g := NewWithT(t)
	var out bytes.Buffer
	cmd := newRootCommand("kubectl-prp", strings.NewReader(""), &out, &out)
	cmd.SetArgs([]string{"analyze", "--help"})
	g.Expect(cmd.Execute()).To(Succeed())
	g.Expect(out.String()).To(ContainSubstring("kubectl prp analyze -f deploy/ -R -o sarif"))
}
