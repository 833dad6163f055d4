package analyze_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func decodeFile(t *testing.T, path, namespace string, objs *analyze.Objects) {
	t.Helper()
	f, err := os.Open(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	NewWithT(t).Expect(analyze.DecodeManifests(f, path, namespace, objs)).To(Succeed())
}

func options() analyze.Options {
	return analyze.Options{RootNamespace: "istio-system", StatusPort: 15020, Now: now}
}

// probeKey names one probe of one workload in a report.
type probeKey struct{ namespace, workload, container string }

type probeWant struct {
	verdict analyze.Verdict
	breaks  bool
	need    v1alpha1.StatusReason
	policy  string
}

func probesOf(r analyze.Report) map[probeKey]probeWant {
	out := map[probeKey]probeWant{}
	for _, w := range r.Workloads {
		for _, p := range w.Probes {
			out[probeKey{w.Namespace, string(w.Kind) + "/" + w.Name, p.Container + "/" + string(p.Kind)}] =
				probeWant{p.Verdict, p.Breaks, p.Need, w.Policy}
		}
	}
	return out
}

// TestSeedScenarios judges the documented scenarios (testdata/scenarios.yaml); every expected
// verdict here is written by hand from the scenario, not computed by the operator's packages.
func TestSeedScenarios(t *testing.T) {
	g := NewWithT(t)
	var objs analyze.Objects
	decodeFile(t, filepath.Join("testdata", "scenarios.yaml"), "default", &objs)

	r := analyze.Analyze(objs, options())

	g.Expect(probesOf(r)).To(Equal(map[probeKey]probeWant{
		{"s1", "Deployment/nginx", "nginx/Readiness"}:         {analyze.WillBreak, true, v1alpha1.StatusReasonStrictMTLS, ""},
		{"s2", "Deployment/tcp", "app/Readiness"}:             {analyze.WillBreak, true, v1alpha1.StatusReasonTCPPassesFalsely, ""},
		{"s3", "Deployment/liveness", "liveness/Liveness"}:    {analyze.NotNeeded, false, "", ""},
		{"s4", "Deployment/api", "api/Readiness"}:             {analyze.WillBreak, true, v1alpha1.StatusReasonStrictMTLS, ""},
		{"s4", "Deployment/api", "api/Liveness"}:              {analyze.NotNeeded, false, "", ""},
		{"s5", "Deployment/web", "web/Readiness"}:             {analyze.FixedByPolicy, false, v1alpha1.StatusReasonTCPPassesFalsely, "everything"},
		{"s5", "StatefulSet/db", "db/Readiness"}:              {analyze.FixedByPolicy, false, v1alpha1.StatusReasonTCPPassesFalsely, "everything"},
		{"s5", "DaemonSet/agent", "agent/Liveness"}:           {analyze.FixedByPolicy, false, v1alpha1.StatusReasonTCPPassesFalsely, "everything"},
		{"s6", "Deployment/opted-out", "app/Readiness"}:       {analyze.OptedOut, true, v1alpha1.StatusReasonTCPPassesFalsely, "all"},
		{"s6", "Deployment/outside", "app/Readiness"}:         {analyze.NotInMesh, false, "", "all"},
		{"s6", "Deployment/rewritten", "app/Readiness"}:       {analyze.Redirected, false, v1alpha1.StatusReasonTCPPassesFalsely, "all"},
		{"s7", "Deployment/grpc", "app/Readiness"}:            {analyze.WillBreak, true, v1alpha1.StatusReasonStrictMTLS, "paused"},
		{"s7", "Deployment/host", "app/Readiness"}:            {analyze.Unsupported, true, v1alpha1.StatusReasonStrictMTLS, ""},
		{"elsewhere", "Deployment/stranger", "app/Readiness"}: {analyze.NotInMesh, false, "", ""},
	}))
	g.Expect(r.Ignored).To(ConsistOf(And(HaveField("Kind", "Service"), HaveField("Name", "web"))))
	g.Expect(r.Notes).To(ConsistOf(ContainSubstring("Namespace elsewhere is not in the input")))
	g.Expect(r.Fails(analyze.FailOnBreak)).To(BeTrue())
	g.Expect(r.Fails(analyze.FailOnNever)).To(BeFalse())

	// The workloads are in namespace, kind (rollout order) and name order, and know their line.
	var order []string
	for _, w := range r.Workloads {
		order = append(order, w.Namespace+"/"+string(w.Kind)+"/"+w.Name)
		if w.Name == "nginx" {
			g.Expect(w.Source).To(Equal(analyze.Source{File: filepath.Join("testdata", "scenarios.yaml"), Line: 20}))
		}
	}
	g.Expect(order[5:8]).To(Equal([]string{"s5/Deployment/web", "s5/StatefulSet/db", "s5/DaemonSet/agent"}))
}

func TestFailOn(t *testing.T) {
	fixed := analyze.Report{Workloads: []analyze.WorkloadFinding{{Verdict: analyze.FixedByPolicy,
		Probes: []analyze.ProbeFinding{{Verdict: analyze.FixedByPolicy, Need: v1alpha1.StatusReasonStrictMTLS}}}}}
	broken := analyze.Report{Workloads: []analyze.WorkloadFinding{{Verdict: analyze.WillBreak,
		Probes: []analyze.ProbeFinding{{Verdict: analyze.WillBreak, Breaks: true}}}}}
	clean := analyze.Report{Workloads: []analyze.WorkloadFinding{{Verdict: analyze.Redirected,
		Probes: []analyze.ProbeFinding{{Verdict: analyze.Redirected}}}}}
	tests := []struct {
		report analyze.Report
		failOn analyze.FailOn
		fails  bool
	}{
		{broken, analyze.FailOnBreak, true},
		{broken, analyze.FailOnNeedsRedirect, true},
		{broken, analyze.FailOnNever, false},
		{fixed, analyze.FailOnBreak, false},
		{fixed, analyze.FailOnNeedsRedirect, true},
		{clean, analyze.FailOnNeedsRedirect, false},
	}
	for _, tt := range tests {
		NewWithT(t).Expect(tt.report.Fails(tt.failOn)).To(Equal(tt.fails), "%s on %+v", tt.failOn, tt.report.Workloads[0].Verdict)
	}
}

func TestDecodeManifests(t *testing.T) {
	tests := []struct {
		name, input string
		check       func(g Gomega, objs analyze.Objects)
		err         string
	}{
		{name: "a List, comments and empty documents", input: `# leading comment
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: {name: agent}
  spec:
    selector: {matchLabels: {app: agent}}
    template:
      metadata: {labels: {app: agent}}
      spec: {containers: [{name: agent, image: agent}]}
`, check: func(g Gomega, objs analyze.Objects) {
			g.Expect(objs.Namespaces).To(HaveLen(1))
			g.Expect(objs.Workloads).To(HaveLen(1))
			g.Expect(objs.Workloads[0].Object.GetNamespace()).To(Equal("team"), "the default namespace is filled in")
			g.Expect(objs.Workloads[0].Source.Line).To(Equal(4))
		}},
		{name: "JSON", input: `{"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication", "metadata": {"name": "default"}, "spec": {"mtls": {"mode": "STRICT"}}}`,
			check: func(g Gomega, objs analyze.Objects) {
				g.Expect(objs.PeerAuthentications).To(HaveLen(1))
				g.Expect(objs.PeerAuthentications[0].Namespace).To(Equal("team"))
				g.Expect(objs.PeerAuthentications[0].Spec.GetMtls().GetMode().String()).To(Equal("STRICT"))
			}},
		{name: "a custom resource of another kind is not judged", input: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
			check: func(g Gomega, objs analyze.Objects) {
				g.Expect(objs.Ignored).To(Equal([]analyze.Ignored{{APIVersion: "example.com/v1", Kind: "Widget", Name: "w", Source: analyze.Source{File: "in.yaml", Line: 1}}}))
			}},
		{name: "not YAML", input: "apiVersion: v1\nkind: [\n", err: "in.yaml:1"},
		{name: "not a Kubernetes object (a values.yaml)", input: "replicaCount: 2\nimage: {tag: 1.0}\n", check: func(g Gomega, objs analyze.Objects) {
			g.Expect(objs.Ignored).To(Equal([]analyze.Ignored{{Source: analyze.Source{File: "in.yaml", Line: 1}, Why: "not a Kubernetes object (no apiVersion and kind)"}}))
		}},
		{name: "a workload of a retired apiVersion is named, not judged", input: "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: old}\nspec: {template: {spec: {containers: [{name: a, image: a}]}}}\n",
			check: func(g Gomega, objs analyze.Objects) {
				g.Expect(objs.Workloads).To(BeEmpty())
				g.Expect(objs.Ignored).To(ConsistOf(And(HaveField("APIVersion", "apps/v1beta2"), HaveField("Kind", "Deployment"), HaveField("Name", "old"),
					HaveField("Why", "served no longer: write it as apps/v1"))))
			}},
		{name: "separators with comments, and a typed list", input: "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n--- # the next one\n" +
			"apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: d1}\n  spec: {template: {spec: {containers: [{name: a, image: a}]}}}\n- metadata: {name: d2}\n",
			check: func(g Gomega, objs analyze.Objects) {
				g.Expect(objs.Namespaces).To(HaveLen(1))
				g.Expect(objs.Workloads).To(HaveLen(2))
				g.Expect(objs.Workloads[1].Object.GetName()).To(Equal("d2"))
				g.Expect(objs.Workloads[0].Source.Line).To(Equal(5))
			}},
		{name: "a known kind with a wrong field type", input: "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: many}\n", err: "in.yaml:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var objs analyze.Objects
			err := analyze.DecodeManifests(strings.NewReader(tt.input), "in.yaml", "team", &objs)
			if tt.err != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.err)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			tt.check(g, objs)
		})
	}
}

// TestReviewFindings covers what a review of the analysis found: each case is a small input and
// the verdict a user must read.
func TestReviewFindings(t *testing.T) {
	const strictShop = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
spec: {mtls: {mode: STRICT}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
`
	run := func(t *testing.T, extra string, opts analyze.Options) analyze.Report {
		var objs analyze.Objects
		NewWithT(t).Expect(analyze.DecodeManifests(strings.NewReader(strictShop+"---\n"+extra), "in.yaml", "default", &objs)).To(Succeed())
		return analyze.Analyze(objs, opts)
	}
	probe := func(r analyze.Report) analyze.ProbeFinding { return r.Workloads[0].Probes[0] }

	t.Run("a policy whose probeTypes leave the HTTP probe out does not make it work", func(t *testing.T) {
		g := NewWithT(t)
		r := run(t, "apiVersion: mesh.proberedirect.io/v1alpha1\nkind: ProbeRedirectPolicy\nmetadata: {name: tcp-only, namespace: shop}\nspec: {selector: {}, probeTypes: [TCP]}\n", options())
		g.Expect(probe(r).Verdict).To(Equal(analyze.WillBreak))
		g.Expect(probe(r).Breaks).To(BeTrue())
		g.Expect(probe(r).NeedMessage).To(ContainSubstring("policy tcp-only's spec (probeTypes, trigger) leaves it out"))
		g.Expect(r.Fails(analyze.FailOnBreak)).To(BeTrue())
	})
	t.Run("a policy in the change is newer than one the cluster has", func(t *testing.T) {
		g := NewWithT(t)
		r := run(t, `apiVersion: mesh.proberedirect.io/v1alpha1
kind: ProbeRedirectPolicy
metadata: {name: old-suspended, namespace: shop, creationTimestamp: "2024-06-01T00:00:00Z"}
spec: {selector: {}, suspend: true}
---
apiVersion: mesh.proberedirect.io/v1alpha1
kind: ProbeRedirectPolicy
metadata: {name: new, namespace: shop}
spec: {selector: {}}
`, options())
		g.Expect(r.Workloads[0].Policy).To(Equal("old-suspended"), "the older policy manages it, as in the cluster")
		g.Expect(probe(r).Verdict).To(Equal(analyze.WillBreak))
	})
	t.Run("a PeerAuthentication in the change is newer than the cluster's", func(t *testing.T) {
		g := NewWithT(t)
		r := run(t, "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: relax, namespace: shop}\nspec: {mtls: {mode: PERMISSIVE}}\n", options())
		g.Expect(probe(r).MTLSMode).To(Equal(v1alpha1.MTLSStrict), "Istio keeps the oldest namespace-wide policy")
		g.Expect(probe(r).Verdict).To(Equal(analyze.WillBreak))
	})
	t.Run("a startup probe behind an ordinary istio-proxy breaks even when nothing needs a redirect", func(t *testing.T) {
		g := NewWithT(t)
		var objs analyze.Objects
		g.Expect(analyze.DecodeManifests(strings.NewReader(`apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reports, namespace: shop}
spec:
  selector: {matchLabels: {app: reports}}
  template:
    metadata: {labels: {app: reports}}
    spec:
      initContainers: [{name: db-proxy, image: p, restartPolicy: Always, startupProbe: {httpGet: {path: /started, port: 9801}}}]
      containers: [{name: reports, image: r}]
`), "in.yaml", "default", &objs)).To(Succeed())
		opts := options()
		opts.Istio = istiomesh.IstioVersion{Version: version.MustParseGeneric("1.26.0")}
		r := analyze.Analyze(objs, opts)
		g.Expect(r.Workloads[0].Verdict).To(Equal(analyze.Unsupported))
		g.Expect(probe(r).Breaks).To(BeTrue())
		g.Expect(r.Fails(analyze.FailOnBreak)).To(BeTrue())
	})
	t.Run("an invalid selector is named", func(t *testing.T) {
		g := NewWithT(t)
		r := run(t, "apiVersion: mesh.proberedirect.io/v1alpha1\nkind: ProbeRedirectPolicy\nmetadata: {name: bad, namespace: shop}\nspec: {selector: {matchExpressions: [{key: app, operator: Foo}]}}\n", options())
		g.Expect(r.Notes).To(ContainElement(ContainSubstring("ProbeRedirectPolicy shop/bad selects nothing")))
		g.Expect(r.Workloads[0].Policy).To(BeEmpty())
	})
}
