package analyze_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
)

// istioInjectDir holds Istio's own injector golden files (../shared/fixtures/README.md), read in
// place.
const istioInjectDir = "../../../shared/fixtures/istio-inject"

// strictMesh is the context the fixtures are judged in: their namespace is in the mesh under
// STRICT mTLS.
const strictMesh = `apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio-injection: enabled}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`

// selectAll is a ProbeRedirectPolicy that selects every workload of the namespace.
const selectAll = `apiVersion: mesh.proberedirect.io/v1alpha1
kind: ProbeRedirectPolicy
metadata: {name: all, namespace: default}
spec: {selector: {}}
`

// TestIstioGoldenInputs judges every input of Istio's injector golden files, in a STRICT mesh
// namespace, first as they are and then with a policy that selects everything.
//
// Without a policy the verdicts are written here by hand. With the policy, the probes the
// analysis says will be redirected (FixedByPolicy or Redirected) must be exactly the probes
// Istio's own injector rewrote in the file's golden output: the keys of ISTIO_KUBE_APP_PROBERS
// on istio-proxy in X.yaml.injected, read here without the operator's code.
func TestIstioGoldenInputs(t *testing.T) {
	want := map[string]analyze.Verdict{
		"hello-probes.yaml":                               analyze.WillBreak,
		"hello-probes-with-flag-set-in-annotation.yaml":   analyze.Redirected,
		"hello-probes-with-flag-unset-in-annotation.yaml": analyze.OptedOut,
		"https-probes.yaml":                               analyze.WillBreak,
		"named_port.yaml":                                 analyze.WillBreak,
		"ready_live.yaml":                                 analyze.WillBreak,
		"startup_only.yaml":                               analyze.WillBreak,
		"status_annotations.yaml":                         analyze.NotNeeded, // it has no probes
		"tcp-probes.yaml":                                 analyze.WillBreak,
		"two_container.yaml":                              analyze.WillBreak,
		"native-sidecar.yaml":                             "", // a bare Pod: not a workload the operator manages
	}
	inputs, err := filepath.Glob(filepath.Join(istioInjectDir, "*.yaml"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(len(inputs)).To(BeNumerically(">=", 11), "is %s missing?", istioInjectDir)
	for _, input := range inputs {
		name := filepath.Base(input)
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			expected, ok := want[name]
			g.Expect(ok).To(BeTrue(), "a new fixture: write its expected verdict here")

			r := judgeFixture(t, input, "")
			if expected == "" {
				g.Expect(r.Workloads).To(BeEmpty())
				g.Expect(r.Ignored).To(ConsistOf(HaveField("Kind", "Pod")))
				return
			}
			g.Expect(r.Workloads).To(HaveLen(1))
			g.Expect(r.Workloads[0].Verdict).To(Equal(expected))
			g.Expect(r.Fails(analyze.FailOnBreak)).To(Equal(expected == analyze.WillBreak || expected == analyze.OptedOut))

			withPolicy := judgeFixture(t, input, selectAll)
			var redirected []string
			for _, p := range withPolicy.Workloads[0].Probes {
				if p.Verdict == analyze.FixedByPolicy || p.Verdict == analyze.Redirected {
					redirected = append(redirected, p.Container+"/"+strings.ToLower(string(p.Kind)))
				}
			}
			sort.Strings(redirected)
			g.Expect(redirected).To(Equal(rewrittenByIstio(t, input+".injected")), "the probes Istio's injector rewrote")
			g.Expect(withPolicy.Fails(analyze.FailOnBreak)).To(Equal(expected == analyze.OptedOut), "a policy fixes all but an opt-out")
		})
	}
}

func judgeFixture(t *testing.T, input, extra string) analyze.Report {
	t.Helper()
	var objs analyze.Objects
	decodeFile(t, input, "default", &objs)
	NewWithT(t).Expect(analyze.DecodeManifests(strings.NewReader(strictMesh+"---\n"+extra), "context.yaml", "default", &objs)).To(Succeed())
	return analyze.Analyze(objs, options())
}

// rewrittenByIstio reads the probes Istio rewrote from a golden output: the container and kind
// of each /app-health/<container>/<kind>z key of ISTIO_KUBE_APP_PROBERS, sorted.
func rewrittenByIstio(t *testing.T, injected string) []string {
	t.Helper()
	g := NewWithT(t)
	raw, err := os.ReadFile(injected)
	g.Expect(err).NotTo(HaveOccurred())
	var doc struct {
		Spec struct {
			Template struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	g.Expect(yaml.Unmarshal(raw, &doc)).To(Succeed())
	spec := doc.Spec.Template.Spec
	var out []string
	for _, c := range append(spec.Containers, spec.InitContainers...) {
		for _, env := range c.Env {
			if c.Name != "istio-proxy" || env.Name != "ISTIO_KUBE_APP_PROBERS" {
				continue
			}
			var probers map[string]json.RawMessage
			g.Expect(json.Unmarshal([]byte(env.Value), &probers)).To(Succeed())
			for path := range probers {
				rest, isProbe := strings.CutPrefix(path, "/app-health/")
				if !isProbe {
					continue // Istio also rewrites httpGet lifecycle hooks (/app-lifecycle/...); they are not probes
				}
				parts := strings.Split(rest, "/")
				g.Expect(parts).To(HaveLen(2), path)
				kind := map[string]string{"readyz": "readiness", "livez": "liveness", "startupz": "startup"}[parts[1]]
				out = append(out, parts[0]+"/"+kind)
			}
		}
	}
	sort.Strings(out)
	return out
}
