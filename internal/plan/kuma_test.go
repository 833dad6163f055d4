package plan_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// kumaNamespace is a namespace whose pods Kuma injects.
var kumaNamespace = map[string]string{kumamesh.SidecarInjectionLabel: "enabled", "kubernetes.io/metadata.name": ns}

func strictMesh() kumamesh.Mesh {
	return kumamesh.Mesh{Name: "default", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSStrict}
}

func permissiveMesh() kumamesh.Mesh {
	return kumamesh.Mesh{Name: "default", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSPermissive}
}

// kumaInput is what the controller observes for p in a namespace with namespaceLabels, with both
// meshes installed: Kuma's Meshes and MeshTLS policies as given, no PeerAuthentication.
func kumaInput(p *v1alpha1.ProbeRedirectPolicy, namespaceLabels map[string]string, meshes []kumamesh.Mesh, policies []kumamesh.MeshTLS, ws ...plan.Workload) plan.Input {
	in := input(p, ws...)
	in.Meshes = []mesh.Mesh{
		&istiomesh.View{Namespace: ns, NamespaceLabels: namespaceLabels, MTLS: resolver(), StatusPort: istiomesh.DefaultStatusPort},
		&kumamesh.View{Namespace: ns, NamespaceLabels: namespaceLabels, Modes: kumamesh.NewResolver(meshes, policies, kumamesh.DefaultSystemNamespace)},
	}
	return in
}

// kumaPod is podOf after the Kuma injector double admitted it with Kuma's default configuration.
func kumaPod(t *testing.T, w plan.Workload, suffix string, o meshdouble.KumaOptions) *corev1.Pod {
	t.Helper()
	pod := podOf(w, suffix)
	if err := meshdouble.KumaInject(pod, "default", o); err != nil {
		t.Fatalf("injecting %s: %v", pod.Name, err)
	}
	return pod
}

func TestKumaWorkloads(t *testing.T) {
	httpApp := containers(container("app", readiness(httpGet(8080, "/ready"))))
	tcpApp := containers(container("db", readiness(tcpSocket(5432))))
	apiTLS := kumamesh.MeshTLS{Namespace: ns, Name: "api-strict", Mesh: "default", Mode: v1alpha1.MTLSStrict,
		TargetRef: kumamesh.TargetRef{Kind: "Dataplane", Labels: map[string]string{"app": "api"}}}
	noProxy := meshdouble.DefaultKumaOptions()
	noProxy.ProbeProxyPort = 0

	tests := []struct {
		name       string
		meshes     []kumamesh.Mesh
		policies   []kumamesh.MeshTLS
		workload   plan.Workload
		pods       func(t *testing.T, w plan.Workload) []*corev1.Pod
		state      v1alpha1.WorkloadState
		reason     v1alpha1.StatusReason
		annotate   bool
		mode       v1alpha1.MTLSMode
		rewrittenT string
	}{
		{name: "HTTP under a STRICT Mesh is queued for the probe proxy annotation", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", httpApp), state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, annotate: true,
			mode: v1alpha1.MTLSStrict, rewrittenT: "HTTP :9001/8080/ready"},
		{name: "HTTP under a PERMISSIVE Mesh needs nothing", meshes: []kumamesh.Mesh{permissiveMesh()},
			workload: deployment("web", httpApp), state: v1alpha1.WorkloadNotNeeded, reason: v1alpha1.StatusReasonNoProbeNeedsRedirect,
			mode: v1alpha1.MTLSPermissive, rewrittenT: "HTTP :9001/8080/ready"},
		{name: "TCP passes falsely in every mode", meshes: []kumamesh.Mesh{permissiveMesh()},
			workload: deployment("db", tcpApp), state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, annotate: true,
			mode: v1alpha1.MTLSPermissive, rewrittenT: "HTTP :9001/tcp/5432"},
		{name: "a Mesh without mTLS: HTTP reaches the app", meshes: []kumamesh.Mesh{{Name: "default", Mode: v1alpha1.MTLSDisable}},
			workload: deployment("web", httpApp), state: v1alpha1.WorkloadNotNeeded, reason: v1alpha1.StatusReasonNoProbeNeedsRedirect,
			mode: v1alpha1.MTLSDisable},
		{name: "a person's \"0\" is left alone", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", httpApp, templateAnnotation(kumamesh.ProbeProxyPortAnnotation, "0")),
			state:    v1alpha1.WorkloadOptedOut, reason: v1alpha1.StatusReasonRewriteDisabledByUser, mode: v1alpha1.MTLSStrict},
		{name: "an unreadable port is not overwritten", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", httpApp, templateAnnotation(kumamesh.ProbeProxyPortAnnotation, "nine")),
			state:    v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonInvalidProbeProxyPort, mode: v1alpha1.MTLSStrict},
		{name: "MeshTLS makes one workload STRICT in a PERMISSIVE Mesh", meshes: []kumamesh.Mesh{permissiveMesh()}, policies: []kumamesh.MeshTLS{apiTLS},
			workload: deployment("api", httpApp, label("app", "api")), state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, annotate: true,
			mode: v1alpha1.MTLSStrict},
		{name: "pods redirected by Kuma's default: Redirected without a write", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", httpApp),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{kumaPod(t, w, "a", meshdouble.DefaultKumaOptions())}
			},
			state: v1alpha1.WorkloadRedirected, reason: v1alpha1.StatusReasonRedirectedByMeshDefault, mode: v1alpha1.MTLSStrict},
		{name: "pods redirected by Kuma's default, nothing needed: NotNeeded", meshes: []kumamesh.Mesh{permissiveMesh()},
			workload: deployment("web", httpApp),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{kumaPod(t, w, "a", meshdouble.DefaultKumaOptions())}
			},
			state: v1alpha1.WorkloadNotNeeded, reason: v1alpha1.StatusReasonNoProbeNeedsRedirect, mode: v1alpha1.MTLSPermissive},
		{name: "pods of a control plane with the proxy off: annotated", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", httpApp),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{kumaPod(t, w, "a", noProxy)}
			},
			state: v1alpha1.WorkloadQueued, reason: v1alpha1.StatusReasonQueued, annotate: true, mode: v1alpha1.MTLSStrict},
		{name: "annotated, pods verified", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", httpApp, templateAnnotation(kumamesh.ProbeProxyPortAnnotation, "9001")),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{kumaPod(t, w, "a", noProxy), kumaPod(t, w, "b", noProxy)}
			},
			state: v1alpha1.WorkloadRedirected, reason: v1alpha1.StatusReasonProbesRewritten, mode: v1alpha1.MTLSStrict, rewrittenT: "HTTP :9001/8080/ready"},
		{name: "a probe on the proxy port is a hazard", meshes: []kumamesh.Mesh{strictMesh()},
			workload: deployment("web", containers(container("app", readiness(httpGet(9001, "/ready"))))),
			state:    v1alpha1.WorkloadUnsupported, reason: v1alpha1.StatusReasonProbePortIsProxyPort, mode: v1alpha1.MTLSStrict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := kumaInput(policy(), kumaNamespace, tt.meshes, tt.policies, tt.workload)
			if tt.pods != nil {
				in.Pods = tt.pods(t, tt.workload)
			}
			d := plan.Decide(in)
			g.Expect(d.Verdicts).To(HaveLen(1))
			s := d.Verdicts[0].Status
			g.Expect(s.Mesh).To(Equal(v1alpha1.MeshKuma))
			g.Expect(s.State).To(Equal(tt.state), s.Message)
			g.Expect(s.Reason).To(Equal(tt.reason), s.Message)
			g.Expect(s.MTLSMode).To(Equal(tt.mode))
			if tt.rewrittenT != "" {
				g.Expect(s.Probes[0].Rewritten).To(Equal(tt.rewrittenT))
			}
			if !tt.annotate {
				g.Expect(d.Annotate).To(BeEmpty())
				return
			}
			g.Expect(d.Annotate).To(ConsistOf(tt.workload.Ref()))
			a, ok := d.AnnotationOf(tt.workload.Ref())
			g.Expect(ok).To(BeTrue())
			g.Expect(a).To(Equal(mesh.Annotation{Key: kumamesh.ProbeProxyPortAnnotation, Value: "9001"}))
			out := plan.Complete(d, applied(d, 2))
			g.Expect(out.Status.Mesh).To(Equal("Kuma"))
			g.Expect(out.Status.IstioVersion).To(BeEmpty(), "a Kuma policy has no Istio version")
			g.Expect(out.Events).To(ContainElement(HaveField("Message", "Set kuma.io/application-probe-proxy-port=9001 on the pod template of Deployment/"+tt.workload.Ref().Name)))
		})
	}
}

func TestKumaPortFromThePolicy(t *testing.T) {
	g := NewWithT(t)
	p := policy()
	p.Spec.Kuma.ApplicationProbeProxyPort = 9555
	w := deployment("db", containers(container("db", readiness(tcpSocket(5432)))))
	d := plan.Decide(kumaInput(p, kumaNamespace, []kumamesh.Mesh{strictMesh()}, nil, w))
	a, ok := d.AnnotationOf(w.Ref())
	g.Expect(ok).To(BeTrue())
	g.Expect(a.Value).To(Equal("9555"))
	g.Expect(d.Verdicts[0].Status.Probes[0].Rewritten).To(Equal("HTTP :9555/tcp/5432"))
}

// TestPolicyOverBothMeshes selects, in one namespace, a workload Istio injects (its pod label) and
// one Kuma injects (its pod label): each is judged by its own mesh, and the policy names both.
func TestPolicyOverBothMeshes(t *testing.T) {
	g := NewWithT(t)
	namespace := map[string]string{kumamesh.SidecarInjectionLabel: "disabled", "kubernetes.io/metadata.name": ns}
	httpApp := containers(container("app", readiness(httpGet(8080, "/ready"))))
	istioApp := deployment("istio-app", httpApp, label("sidecar.istio.io/inject", "true"))
	kumaApp := deployment("kuma-app", httpApp, label(kumamesh.SidecarInjectionLabel, "enabled"))
	plain := deployment("plain", httpApp)
	in := kumaInput(policy(maxConcurrent(2)), namespace, []kumamesh.Mesh{strictMesh()}, nil, istioApp, kumaApp, plain)
	istioOf(in).MTLS = resolver(strictNamespace())

	d := plan.Decide(in)
	byName := map[string]v1alpha1.WorkloadStatus{}
	for _, v := range d.Verdicts {
		byName[v.Ref.Name] = v.Status
	}
	g.Expect(byName["istio-app"].Mesh).To(Equal(v1alpha1.MeshIstio))
	g.Expect(byName["kuma-app"].Mesh).To(Equal(v1alpha1.MeshKuma))
	g.Expect(byName["plain"].State).To(Equal(v1alpha1.WorkloadNotInMesh))
	istioAnnotation, _ := d.AnnotationOf(istioApp.Ref())
	kumaAnnotation, _ := d.AnnotationOf(kumaApp.Ref())
	g.Expect(istioAnnotation.Key).To(Equal(istiomesh.RewriteAnnotation))
	g.Expect(kumaAnnotation.Key).To(Equal(kumamesh.ProbeProxyPortAnnotation))
	g.Expect(d.Annotate).To(ConsistOf(istioApp.Ref(), kumaApp.Ref()))

	out := plan.Complete(d, nil)
	g.Expect(out.Status.Mesh).To(Equal("Istio,Kuma"))
	g.Expect(out.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
}

// TestKumaSidecarProbeFailuresNeverCount keeps kuma-sidecar's own Unhealthy events out of the
// report, as istio-proxy's are.
func TestKumaSidecarProbeFailuresNeverCount(t *testing.T) {
	g := NewWithT(t)
	w := deployment("web", containers(container("app", readiness(httpGet(8080, "/ready")))), templateAnnotation(kumamesh.ProbeProxyPortAnnotation, "9001"))
	pod := kumaPod(t, w, "a", meshdouble.DefaultKumaOptions())
	in := kumaInput(policy(), kumaNamespace, []kumamesh.Mesh{strictMesh()}, nil, w)
	in.Pods = []*corev1.Pod{pod}
	sidecar := unhealthyEvent(pod.Name, "Readiness probe failed: Get \"http://10.0.0.1:9901/ready\": dial tcp: connection refused", 3, now)
	sidecar.InvolvedObject.FieldPath = "spec.containers{kuma-sidecar}"
	app := unhealthyEvent(pod.Name, "Readiness probe failed: HTTP probe failed with statuscode: 503", 2, now)
	app.InvolvedObject.FieldPath = "spec.containers{app}"
	in.Events = []corev1.Event{sidecar, app}

	d := plan.Decide(in)
	g.Expect(d.Unhealthy.Total).To(BeEquivalentTo(1))
	g.Expect(d.Unhealthy.Pods[0].Container).To(Equal("app"))
}

// TestWorkloadOutsideEveryMeshNamesNone reports a workload no mesh claims without a mesh, and a
// workload kept out by Kuma's own label under Kuma.
func TestWorkloadOutsideEveryMeshNamesNone(t *testing.T) {
	g := NewWithT(t)
	httpApp := containers(container("app", readiness(httpGet(8080, "/ready"))))
	plain := map[string]string{"kubernetes.io/metadata.name": ns}
	d := plan.Decide(kumaInput(policy(), plain, []kumamesh.Mesh{strictMesh()}, nil, deployment("web", httpApp)))
	g.Expect(d.Verdicts[0].Status.State).To(Equal(v1alpha1.WorkloadNotInMesh))
	g.Expect(d.Verdicts[0].Status.Mesh).To(BeEmpty())
	g.Expect(plan.Complete(d, nil).Status.Mesh).To(BeEmpty())

	off := map[string]string{kumamesh.SidecarInjectionLabel: "disabled", "kubernetes.io/metadata.name": ns}
	d = plan.Decide(kumaInput(policy(), off, []kumamesh.Mesh{strictMesh()}, nil, deployment("web", httpApp)))
	g.Expect(d.Verdicts[0].Status.State).To(Equal(v1alpha1.WorkloadNotInMesh))
	g.Expect(d.Verdicts[0].Status.Reason).To(Equal(v1alpha1.StatusReasonNamespaceInjectionDisabled))
	g.Expect(d.Verdicts[0].Status.Mesh).To(Equal(v1alpha1.MeshKuma))
}

// TestKumaWorkloadsLeftAlone covers what keeps a Kuma workload from being annotated before its
// probes are weighed: a delegated gateway, a Mesh that does not exist, and both meshes injecting.
func TestKumaWorkloadsLeftAlone(t *testing.T) {
	httpApp := containers(container("app", readiness(httpGet(8080, "/ready"))))
	tests := []struct {
		name      string
		labels    map[string]string
		workload  plan.Workload
		state     v1alpha1.WorkloadState
		reason    v1alpha1.StatusReason
		probeWant v1alpha1.ProbeState
	}{
		{"a delegated gateway: its traffic bypasses the sidecar", kumaNamespace,
			deployment("gw", httpApp, templateAnnotation(kumamesh.GatewayAnnotation, "enabled")),
			v1alpha1.WorkloadNotNeeded, v1alpha1.StatusReasonGatewayPod, v1alpha1.ProbeNotNeeded},
		{"a Mesh that does not exist", map[string]string{kumamesh.SidecarInjectionLabel: "enabled", kumamesh.MeshLabel: "ghost", "kubernetes.io/metadata.name": ns},
			deployment("web", httpApp), v1alpha1.WorkloadUnsupported, v1alpha1.StatusReasonMeshNotFound, v1alpha1.ProbeUnsupported},
		{"Istio and Kuma both inject", map[string]string{kumamesh.SidecarInjectionLabel: "enabled", "istio-injection": "enabled", "kubernetes.io/metadata.name": ns},
			deployment("web", httpApp), v1alpha1.WorkloadUnsupported, v1alpha1.StatusReasonInjectedByTwoMeshes, v1alpha1.ProbeUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := kumaInput(policy(), tt.labels, []kumamesh.Mesh{strictMesh()}, nil, tt.workload)
			in.Meshes[1].(*kumamesh.View).MeshesKnown = true
			d := plan.Decide(in)
			s := d.Verdicts[0].Status
			g.Expect(s.State).To(Equal(tt.state), s.Message)
			g.Expect(s.Reason).To(Equal(tt.reason), s.Message)
			g.Expect(s.Probes[0].State).To(Equal(tt.probeWant))
			g.Expect(d.Annotate).To(BeEmpty())
		})
	}
}
