package analyze_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
)

// kumaScenarios are Kuma workloads next to an Istio one. Mesh default is STRICT, Mesh relaxed
// PERMISSIVE; namespace pay joins relaxed through its kuma.io/mesh annotation, and a MeshTLS there
// makes ledger STRICT.
const kumaScenarios = `apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin, mode: STRICT}]}}
---
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: relaxed}
spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin, mode: PERMISSIVE}]}}
---
apiVersion: kuma.io/v1alpha1
kind: MeshTLS
metadata: {name: ledger-strict, namespace: pay, labels: {kuma.io/mesh: relaxed}}
spec:
  targetRef: {kind: Dataplane, labels: {app: ledger}}
  rules: [{default: {mode: Strict}}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kuma.io/sidecar-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: pay, labels: {kuma.io/sidecar-injection: enabled}, annotations: {kuma.io/mesh: relaxed}}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db, readinessProbe: {tcpSocket: {port: 5432}}}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy, namespace: shop}
spec:
  selector: {matchLabels: {app: legacy}}
  template:
    metadata: {labels: {app: legacy}, annotations: {kuma.io/application-probe-proxy-port: "0"}}
    spec: {containers: [{name: legacy, image: legacy, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ledger, namespace: pay}
spec:
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec: {containers: [{name: ledger, image: ledger, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: board, namespace: pay}
spec:
  selector: {matchLabels: {app: board}}
  template:
    metadata: {labels: {app: board}}
    spec: {containers: [{name: board, image: board, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cache, namespace: pay}
spec:
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec: {containers: [{name: cache, image: cache, readinessProbe: {tcpSocket: {port: 6379}}}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: istio-shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
`

// TestKuma judges Kuma workloads as the operator does; every expectation is written by hand.
func TestKuma(t *testing.T) {
	type want struct {
		mesh      v1alpha1.MeshName
		mode      v1alpha1.MTLSMode
		verdict   analyze.Verdict
		breaks    bool
		need      v1alpha1.StatusReason
		rewritten string
		policy    string
	}
	const webPolicy = `---
apiVersion: mesh.proberedirect.io/v1alpha1
kind: ProbeRedirectPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
`
	tests := []struct {
		name  string
		extra string
		opts  func(*analyze.Options)
		want  map[string]want
	}{
		{name: "without a policy", want: map[string]want{
			"shop/web":       {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.WillBreak, true, v1alpha1.StatusReasonStrictMTLS, "HTTP :9001/8080/ready", ""},
			"shop/db":        {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.WillBreak, true, v1alpha1.StatusReasonTCPPassesFalsely, "HTTP :9001/tcp/5432", ""},
			"shop/legacy":    {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.OptedOut, true, v1alpha1.StatusReasonStrictMTLS, "HTTP :9001/8080/ready", ""},
			"pay/ledger":     {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.WillBreak, true, v1alpha1.StatusReasonStrictMTLS, "HTTP :9001/8080/ready", ""},
			"pay/board":      {v1alpha1.MeshKuma, v1alpha1.MTLSPermissive, analyze.NotNeeded, false, "", "HTTP :9001/8080/ready", ""},
			"pay/cache":      {v1alpha1.MeshKuma, v1alpha1.MTLSPermissive, analyze.WillBreak, true, v1alpha1.StatusReasonTCPPassesFalsely, "HTTP :9001/tcp/6379", ""},
			"istio-shop/api": {v1alpha1.MeshIstio, v1alpha1.MTLSPermissive, analyze.NotNeeded, false, "", "HTTP :15020/app-health/api/readyz", ""},
		}},
		{name: "a policy fixes web", extra: webPolicy, want: map[string]want{
			"shop/web": {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.FixedByPolicy, false, v1alpha1.StatusReasonStrictMTLS, "HTTP :9001/8080/ready", "web"},
		}},
		{name: "a policy's own probe proxy port", extra: webPolicy + "  kuma: {applicationProbeProxyPort: 9009}\n", want: map[string]want{
			"shop/web": {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.FixedByPolicy, false, v1alpha1.StatusReasonStrictMTLS, "HTTP :9009/8080/ready", "web"},
		}},
		{name: "Kuma injects nothing in its system namespace, though the manifest lacks kubernetes.io/metadata.name", extra: `---
apiVersion: v1
kind: Namespace
metadata: {name: kuma-system, labels: {kuma.io/sidecar-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cp, namespace: kuma-system}
spec:
  selector: {matchLabels: {app: cp}}
  template:
    metadata: {labels: {app: cp}}
    spec: {containers: [{name: cp, image: cp, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
`, want: map[string]want{
			"kuma-system/cp": {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.NotInMesh, false, "", "HTTP :9001/8080/ready", ""},
		}},
		{name: "the MeshTLS in the system namespace applies to the whole Mesh", extra: `---
apiVersion: kuma.io/v1alpha1
kind: MeshTLS
metadata: {name: all-strict, namespace: mesh-system, labels: {kuma.io/mesh: relaxed}}
spec: {targetRef: {kind: Mesh}, rules: [{default: {mode: Strict}}]}
`, opts: func(o *analyze.Options) { o.KumaSystemNamespace = "mesh-system" }, want: map[string]want{
			"pay/board": {v1alpha1.MeshKuma, v1alpha1.MTLSStrict, analyze.WillBreak, true, v1alpha1.StatusReasonStrictMTLS, "HTTP :9001/8080/ready", ""},
		}},
		{name: "a MeshTLS outside the system namespace applies to its own namespace only", extra: `---
apiVersion: kuma.io/v1alpha1
kind: MeshTLS
metadata: {name: all-strict, namespace: mesh-system, labels: {kuma.io/mesh: relaxed}}
spec: {targetRef: {kind: Mesh}, rules: [{default: {mode: Strict}}]}
`, want: map[string]want{
			"pay/board": {v1alpha1.MeshKuma, v1alpha1.MTLSPermissive, analyze.NotNeeded, false, "", "HTTP :9001/8080/ready", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var objs analyze.Objects
			g.Expect(analyze.DecodeManifests(strings.NewReader(kumaScenarios+tt.extra), "kuma.yaml", "default", &objs)).To(Succeed())
			opts := options()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			r := analyze.Analyze(objs, opts)
			g.Expect(r.Ignored).To(BeEmpty())
			got := map[string]want{}
			for _, w := range r.Workloads {
				g.Expect(w.Probes).To(HaveLen(1), w.Name)
				p := w.Probes[0]
				g.Expect(p.MTLSMode).To(Equal(w.MTLSMode), w.Name)
				got[w.Namespace+"/"+w.Name] = want{w.Mesh, w.MTLSMode, p.Verdict, p.Breaks, p.Need, p.Rewritten, w.Policy}
			}
			for name, expected := range tt.want {
				g.Expect(got).To(HaveKeyWithValue(name, expected))
			}
		})
	}
}

// TestKumaDecodeAndReport reads Kuma's objects from a stream, names one Kuma would refuse, and
// shows the mesh in every format.
func TestKumaDecodeAndReport(t *testing.T) {
	g := NewWithT(t)
	var objs analyze.Objects
	g.Expect(analyze.DecodeManifests(strings.NewReader(kumaScenarios+`---
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: broken}
spec: {mtls: {enabledBackend: ca-9, backends: [{name: ca-1, type: builtin}]}}
---
apiVersion: kuma.io/v1alpha1
kind: MeshTLS
metadata: {name: both, namespace: pay}
spec: {targetRef: {kind: Mesh}, rules: [{default: {mode: Strict}}], from: [{targetRef: {kind: Mesh}, default: {mode: Strict}}]}
---
apiVersion: kuma.io/v1alpha1
kind: MeshHealthCheck
metadata: {name: hc, namespace: pay}
---
apiVersion: v1
kind: List
items:
- {apiVersion: kuma.io/v1alpha1, kind: MeshTLS, metadata: {name: in-a-list}, spec: {targetRef: {kind: Mesh}, rules: [{default: {mode: Permissive}}]}}
`), "kuma.yaml", "team", &objs)).To(Succeed())
	g.Expect(objs.KumaMeshes).To(HaveLen(2))
	g.Expect(objs.KumaMeshes[0].Name).To(Equal("default"))
	g.Expect(objs.KumaMeshes[0].Mode).To(Equal(v1alpha1.MTLSStrict))
	g.Expect(objs.KumaMeshes[1].Mode).To(Equal(v1alpha1.MTLSPermissive))
	g.Expect(objs.KumaMeshTLSes).To(HaveLen(2))
	g.Expect(objs.KumaMeshTLSes[0].Mesh).To(Equal("relaxed"))
	g.Expect(objs.KumaMeshTLSes[1].Namespace).To(Equal("team"), "the default namespace is filled in")
	g.Expect(objs.Ignored).To(HaveLen(3))
	g.Expect(objs.Ignored[0]).To(And(HaveField("Kind", "Mesh"), HaveField("Name", "broken"), HaveField("Source.Line", 93),
		HaveField("Why", And(ContainSubstring("cannot be read"), ContainSubstring(`"ca-9" names none of spec.mtls.backends`)))))
	g.Expect(objs.Ignored[1]).To(And(HaveField("Kind", "MeshTLS"), HaveField("Name", "both"), HaveField("Why", ContainSubstring("cannot be read"))))
	g.Expect(objs.Ignored[2]).To(Equal(analyze.Ignored{APIVersion: "kuma.io/v1alpha1", Kind: "MeshHealthCheck", Name: "hc", Source: analyze.Source{File: "kuma.yaml", Line: 103}}))

	r := analyze.Analyze(objs, options())
	var table bytes.Buffer
	g.Expect(r.Write(&table, "table")).To(Succeed())
	g.Expect(table.String()).To(MatchRegexp(`(?m)^NAMESPACE\s+WORKLOAD\s+CONTAINER\s+PROBE\s+TARGET\s+MESH\s+MTLS\s+VERDICT\s+POLICY\s+WHY\n`))
	g.Expect(table.String()).To(MatchRegexp(`istio-shop\s+Deployment/api\s+api\s+Readiness\s+HTTP :8080/ready\s+Istio\s+PERMISSIVE\s+NotNeeded\s+-`))
	g.Expect(table.String()).To(MatchRegexp(`shop\s+Deployment/web\s+web\s+Readiness\s+HTTP :8080/ready\s+Kuma\s+STRICT\s+WillBreak\s+-\s+STRICT mTLS`))
	g.Expect(table.String()).To(ContainSubstring(`kuma.io/v1alpha1 Mesh/broken (cannot be read`))

	var out bytes.Buffer
	g.Expect(r.Write(&out, "json")).To(Succeed())
	var decoded struct {
		Workloads []struct{ Name, Mesh string }
	}
	g.Expect(json.Unmarshal(out.Bytes(), &decoded)).To(Succeed())
	meshes := map[string]string{}
	for _, w := range decoded.Workloads {
		meshes[w.Name] = w.Mesh
	}
	g.Expect(meshes).To(HaveKeyWithValue("web", "Kuma"))
	g.Expect(meshes).To(HaveKeyWithValue("api", "Istio"))

	s, err := r.SARIF()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Runs[0].Results).NotTo(BeEmpty())
	for _, res := range s.Runs[0].Results {
		g.Expect(res.Properties).To(Equal(sarif.NewPropertyBag().Add("mesh", "Kuma")), *res.Message.Text)
	}
}

// TestIstioTableUnchanged: a report on Istio workloads alone has no MESH column.
func TestIstioTableUnchanged(t *testing.T) {
	g := NewWithT(t)
	var objs analyze.Objects
	g.Expect(analyze.DecodeManifests(strings.NewReader(strictMesh+`---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web, readinessProbe: {httpGet: {path: /ready, port: 8080}}}]}
`), "in.yaml", "default", &objs)).To(Succeed())
	r := analyze.Analyze(objs, options())
	g.Expect(r.Workloads[0].Mesh).To(Equal(v1alpha1.MeshIstio))
	var table bytes.Buffer
	g.Expect(r.Write(&table, "table")).To(Succeed())
	g.Expect(strings.SplitN(table.String(), "\n", 2)[0]).To(MatchRegexp(`^NAMESPACE\s+WORKLOAD\s+CONTAINER\s+PROBE\s+TARGET\s+MTLS\s+VERDICT\s+POLICY\s+WHY$`))
}
