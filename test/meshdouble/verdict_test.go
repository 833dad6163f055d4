package meshdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

const (
	verdictRoot = "istio-system"
	verdictNS   = "app"
)

var verdictCreated = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

// verdictPA builds a PeerAuthentication; selector and ports are optional.
func verdictPA(namespace, name string, mode securityv1beta1.PeerAuthentication_MutualTLS_Mode,
	selector map[string]string, ports map[uint32]securityv1beta1.PeerAuthentication_MutualTLS_Mode,
) *securityv1.PeerAuthentication {
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{
		Namespace: namespace, Name: name, CreationTimestamp: verdictCreated,
	}}
	pa.Spec.Mtls = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: mode}
	if selector != nil {
		pa.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: selector}
	}
	if ports != nil {
		pa.Spec.PortLevelMtls = map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{}
		for p, m := range ports {
			pa.Spec.PortLevelMtls[p] = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: m}
		}
	}
	return pa
}

const (
	strictMode     = securityv1beta1.PeerAuthentication_MutualTLS_STRICT
	permissiveMode = securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE
	disableMode    = securityv1beta1.PeerAuthentication_MutualTLS_DISABLE
)

var nsStrict = verdictPA(verdictNS, "default", strictMode, nil, nil)

// verdictContainer is an nginx-like container with one readiness probe.
func verdictContainer(name, image string, probe corev1.ProbeHandler, ports ...corev1.ContainerPort) corev1.Container {
	return corev1.Container{
		Name:           name,
		Image:          image,
		Ports:          ports,
		ReadinessProbe: &corev1.Probe{ProbeHandler: probe, TimeoutSeconds: 1, PeriodSeconds: 10},
	}
}

func httpGet(port intstr.IntOrString, path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path, Scheme: corev1.URISchemeHTTP}}
}

func tcpSocket(port int) corev1.ProbeHandler {
	return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}
}

func grpcProbe(port int32) corev1.ProbeHandler {
	return corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}}
}

func execProbe() corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
}

func tcpPort(name string, n int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}
}

var nginx80 = verdictContainer("nginx", "nginx:1.27", httpGet(intstr.FromInt(80), "/index.html"), tcpPort("http", 80))

func verdictPodOf(annotations map[string]string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: verdictNS,
			Labels:      map[string]string{"app": "web"},
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{Containers: containers},
	}
}

func rewriteOn() map[string]string { return map[string]string{istiomesh.RewriteAnnotation: "true"} }

func TestJudgeRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		// inject runs Inject (the mesh default rewrite is OFF, so only the
		// annotation turns it on) before judging.
		inject   bool
		policies []*securityv1.PeerAuthentication
		want     ProbeVerdict
		rule     string
	}{
		{name: "STRICT, not rewritten, HTTP probe: reset (#26737)",
			pod: verdictPodOf(nil, nginx80), inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictReset, rule: "strict-mtls-resets-direct-probe"},
		{name: "STRICT, not rewritten, gRPC probe: reset",
			pod:    verdictPodOf(nil, verdictContainer("api", "api:1", grpcProbe(9090), tcpPort("grpc", 9090))),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictReset, rule: "strict-mtls-resets-direct-probe"},
		{name: "STRICT mesh-wide from the root namespace: reset",
			pod: verdictPodOf(nil, nginx80), inject: true,
			policies: []*securityv1.PeerAuthentication{verdictPA(verdictRoot, "default", strictMode, nil, nil)},
			want:     VerdictReset, rule: "strict-mtls-resets-direct-probe"},
		{name: "STRICT, rewritten: pass (status port outside the mesh)",
			pod: verdictPodOf(rewriteOn(), nginx80), inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictPass, rule: "rewritten-probe-bypasses-mtls"},
		{name: "STRICT, rewritten to a custom status port: pass",
			pod:    verdictPodOf(map[string]string{istiomesh.RewriteAnnotation: "true", istiomesh.StatusPortAnnotation: "15555"}, nginx80),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictPass, rule: "rewritten-probe-bypasses-mtls"},
		{name: "no policy (PERMISSIVE), not rewritten: pass",
			pod: verdictPodOf(nil, nginx80), inject: true, want: VerdictPass},
		{name: "namespace PERMISSIVE overrides mesh STRICT: pass",
			pod: verdictPodOf(nil, nginx80), inject: true,
			policies: []*securityv1.PeerAuthentication{
				verdictPA(verdictRoot, "default", strictMode, nil, nil),
				verdictPA(verdictNS, "default", permissiveMode, nil, nil),
			},
			want: VerdictPass},
		{name: "workload portLevelMtls DISABLE on the probe port: pass",
			pod: verdictPodOf(nil, nginx80), inject: true,
			policies: []*securityv1.PeerAuthentication{
				nsStrict,
				verdictPA(verdictNS, "web", strictMode, map[string]string{"app": "web"},
					map[uint32]securityv1beta1.PeerAuthentication_MutualTLS_Mode{80: disableMode}),
			},
			want: VerdictPass},
		{name: "workload portLevelMtls STRICT on the probe port under a PERMISSIVE namespace: reset",
			pod: verdictPodOf(nil, nginx80), inject: true,
			policies: []*securityv1.PeerAuthentication{
				verdictPA(verdictNS, "web", permissiveMode, map[string]string{"app": "web"},
					map[uint32]securityv1beta1.PeerAuthentication_MutualTLS_Mode{80: strictMode}),
			},
			want: VerdictReset, rule: "strict-mtls-resets-direct-probe"},
		{name: "STRICT but the probe port is excluded from capture: pass",
			pod:    verdictPodOf(map[string]string{excludeInboundPortsAnnotation: "8443, 80"}, nginx80),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict}, want: VerdictPass},
		{name: "STRICT but includeInboundPorts leaves the probe port out: pass",
			pod:    verdictPodOf(map[string]string{includeInboundPortsAnnotation: "8080"}, nginx80),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict}, want: VerdictPass},
		{name: "STRICT, includeInboundPorts * captures the probe port: reset",
			pod:    verdictPodOf(map[string]string{includeInboundPortsAnnotation: "*"}, nginx80),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictReset, rule: "strict-mtls-resets-direct-probe"},
		{name: "STRICT, no sidecar (not injected): pass",
			pod: verdictPodOf(nil, nginx80), inject: false, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictPass},
		{name: "STRICT, not rewritten, TCP probe on an undeclared port: pass (sidecar makes it look open)",
			pod:    verdictPodOf(nil, verdictContainer("db", "db:1", tcpSocket(5433), tcpPort("pg", 5432))),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictPass, rule: "sidecar-tcp-looks-open"},
		{name: "rewritten TCP probe on an undeclared port: status500",
			pod:    verdictPodOf(rewriteOn(), verdictContainer("db", "db:1", tcpSocket(5433), tcpPort("pg", 5432))),
			inject: true, want: VerdictStatus500, rule: "agent-tcp-dial-fails"},
		{name: "rewritten TCP probe on a container without ports: status500",
			pod:    verdictPodOf(rewriteOn(), verdictContainer("db", "db:1", tcpSocket(5432))),
			inject: true, want: VerdictStatus500, rule: "agent-tcp-dial-fails"},
		{name: "rewritten TCP probe on a declared port: pass",
			pod:    verdictPodOf(rewriteOn(), verdictContainer("db", "db:1", tcpSocket(5432), tcpPort("pg", 5432))),
			inject: true, want: VerdictPass, rule: "rewritten-probe-bypasses-mtls"},
		{name: "rewritten HTTP probe on a named port the container does not declare: status400",
			pod:    verdictPodOf(rewriteOn(), verdictContainer("web", "web:1", httpGet(intstr.FromString("http"), "/healthz"))),
			inject: true, want: VerdictStatus400, rule: "agent-has-no-entry"},
		{name: "rewritten HTTP probe on a declared named port: pass",
			pod:    verdictPodOf(rewriteOn(), verdictContainer("web", "web:1", httpGet(intstr.FromString("http"), "/healthz"), tcpPort("http", 8080))),
			inject: true, want: VerdictPass, rule: "rewritten-probe-bypasses-mtls"},
		{name: "exec probe under STRICT: pass",
			pod:    verdictPodOf(nil, verdictContainer("job", "job:1", execProbe())),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict}, want: VerdictPass},
		{name: "never-ready image, otherwise healthy: never-ready",
			pod:    verdictPodOf(rewriteOn(), verdictContainer("app", "example.com/never-ready:1", httpGet(intstr.FromInt(80), "/"), tcpPort("http", 80))),
			inject: true, want: VerdictNeverReady, rule: "never-ready-image"},
		{name: "never-ready image without any probe: never-ready",
			pod:    verdictPodOf(nil, corev1.Container{Name: "app", Image: "never-ready"}),
			inject: false, want: VerdictNeverReady, rule: "never-ready-image"},
		{name: "container without probes: pass",
			pod:    verdictPodOf(nil, corev1.Container{Name: "app", Image: "busybox"}),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict}, want: VerdictPass},
		{name: "the earliest rule in the table wins across containers: reset over status500",
			pod: verdictPodOf(nil,
				verdictContainer("db", "db:1", tcpSocket(5433)),
				nginx80),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictReset, rule: "strict-mtls-resets-direct-probe"},
		{name: "liveness probes count too",
			pod: verdictPodOf(nil, corev1.Container{Name: "web", Image: "web:1",
				LivenessProbe: &corev1.Probe{ProbeHandler: httpGet(intstr.FromInt(8080), "/livez")}}),
			inject: true, policies: []*securityv1.PeerAuthentication{nsStrict},
			want: VerdictReset, rule: "strict-mtls-resets-direct-probe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := tc.pod.DeepCopy()
			if tc.inject {
				_, err := Inject(pod, Config{})
				g.Expect(err).NotTo(HaveOccurred())
			}
			j := Judge(pod, 0, resolverModes(pod, tc.policies))
			g.Expect(j.Verdict).To(Equal(tc.want), j.Reason())
			g.Expect(j.Rule).To(Equal(tc.rule), j.Reason())
		})
	}
}

func TestJudgeNilResolverIsPermissive(t *testing.T) {
	g := NewWithT(t)
	pod := verdictPodOf(nil, nginx80)
	_, err := Inject(pod, Config{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(Judge(pod, 0, nil).Verdict).To(Equal(VerdictPass))
}

func TestCollectFacts(t *testing.T) {
	g := NewWithT(t)
	pod := verdictPodOf(rewriteOn(),
		verdictContainer("db", "db:1", tcpSocket(5433), tcpPort("pg", 5432)),
		corev1.Container{Name: "idle", Image: "busybox"})
	_, err := Inject(pod, Config{})
	g.Expect(err).NotTo(HaveOccurred())
	facts := CollectFacts(pod, 0, resolverModes(pod, []*securityv1.PeerAuthentication{nsStrict}))
	g.Expect(facts).To(HaveLen(2))
	g.Expect(facts[0]).To(Equal(ProbeFacts{
		Container: "db", Image: "db:1", Kind: "readiness", Handler: HandlerHTTP,
		Sidecar: true, Rewritten: true, AgentEntry: true, AgentHandler: HandlerTCP,
		AppPort: 5433, PortDeclared: false, Captured: true, Mode: "STRICT",
	}))
	g.Expect(facts[1]).To(Equal(ProbeFacts{
		Container: "idle", Image: "busybox", Handler: HandlerNone, Sidecar: true, Mode: "STRICT",
	}))
}

func TestVerdictRulesTable(t *testing.T) {
	g := NewWithT(t)
	names := map[string]bool{}
	for _, r := range VerdictRules {
		g.Expect(r.Name).NotTo(BeEmpty())
		g.Expect(names[r.Name]).To(BeFalse(), "duplicate rule %s", r.Name)
		names[r.Name] = true
		g.Expect(r.When).NotTo(BeNil(), r.Name)
		g.Expect(Verdicts).To(ContainElement(r.Verdict), r.Name)
		if r.Verdict != VerdictNeverReady {
			g.Expect(r.Doc).To(ContainSubstring("mesh-probes.md §"), r.Name)
		}
	}
	// The doc facts the brief requires the table to encode.
	docs := ""
	for _, r := range VerdictRules {
		docs += r.Doc + "\n"
	}
	g.Expect(docs).To(ContainSubstring("§2.4"))
	g.Expect(docs).To(ContainSubstring("#26737"))
	g.Expect(docs).To(ContainSubstring("§1.8"))
	g.Expect(docs).To(ContainSubstring("§6 #1"))
}

// resolverModes resolves pod's modes with OperatorModes over policies.
func resolverModes(pod *corev1.Pod, policies []*securityv1.PeerAuthentication) PortModes {
	list := func(_ context.Context, namespaces ...string) ([]*securityv1.PeerAuthentication, error) {
		return (&paLister{policies: policies}).list(context.Background(), namespaces...)
	}
	modes, err := OperatorModes(verdictRoot, list)(context.Background(), pod.Namespace, pod.Labels)
	if err != nil {
		panic(err)
	}
	return modes
}

// --- VerdictWebhook ---

type paLister struct {
	policies []*securityv1.PeerAuthentication
	err      error
	asked    [][]string
}

func (l *paLister) list(_ context.Context, namespaces ...string) ([]*securityv1.PeerAuthentication, error) {
	l.asked = append(l.asked, namespaces)
	if l.err != nil {
		return nil, l.err
	}
	var out []*securityv1.PeerAuthentication
	for _, pa := range l.policies {
		for _, ns := range namespaces {
			if pa.Namespace == ns {
				out = append(out, pa)
			}
		}
	}
	return out, nil
}

func verdictServer(t *testing.T, lister *paLister) *httptest.Server {
	t.Helper()
	nsLabels := map[string]map[string]string{
		verdictNS: {"istio-injection": "enabled"},
		"plain":   {},
	}
	wh := &VerdictWebhook{
		Injector: &Webhook{
			Config: Config{RewriteAppHTTPProbe: false},
			NamespaceLabels: func(_ context.Context, ns string) (map[string]string, error) {
				return nsLabels[ns], nil
			},
		},
		Modes: OperatorModes(verdictRoot, lister.list),
	}
	srv := httptest.NewServer(wh)
	t.Cleanup(srv.Close)
	return srv
}

func verdictReview(g Gomega, op admissionv1.Operation, namespace string, pod *corev1.Pod) []byte {
	raw, err := json.Marshal(pod)
	g.Expect(err).NotTo(HaveOccurred())
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "uid-1",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: namespace,
			Operation: op,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	g.Expect(err).NotTo(HaveOccurred())
	return body
}

// verdictAdmit posts body and returns the response and the patched pod.
func verdictAdmit(g Gomega, srv *httptest.Server, pod *corev1.Pod, body []byte) (*admissionv1.AdmissionResponse, *corev1.Pod) {
	resp, err := http.Post(srv.URL+WebhookPath, "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(out))
	g.Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	var review admissionv1.AdmissionReview
	g.Expect(json.Unmarshal(out, &review)).To(Succeed())
	g.Expect(review.Response).NotTo(BeNil())
	g.Expect(review.Response.UID).To(BeEquivalentTo("uid-1"))
	if len(review.Response.Patch) == 0 {
		return review.Response, pod
	}
	g.Expect(*review.Response.PatchType).To(Equal(admissionv1.PatchTypeJSONPatch))
	p, err := jsonpatch.DecodePatch(review.Response.Patch)
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := json.Marshal(pod)
	g.Expect(err).NotTo(HaveOccurred())
	patched, err := p.Apply(raw)
	g.Expect(err).NotTo(HaveOccurred())
	var got corev1.Pod
	g.Expect(json.Unmarshal(patched, &got)).To(Succeed())
	return review.Response, &got
}

func TestVerdictWebhookInjectsAndJudges(t *testing.T) {
	for _, tc := range []struct {
		name        string
		namespace   string
		annotations map[string]string
		want        ProbeVerdict
		injected    bool
	}{
		{name: "STRICT, not rewritten", namespace: verdictNS, want: VerdictReset, injected: true},
		{name: "STRICT, rewritten by annotation", namespace: verdictNS, annotations: rewriteOn(), want: VerdictPass, injected: true},
		{name: "not injected namespace", namespace: "plain", want: VerdictPass},
		{name: "forced verdict is kept", namespace: verdictNS,
			annotations: map[string]string{VerdictAnnotation: string(VerdictNeverReady)}, want: VerdictNeverReady, injected: true},
		{name: "unknown forced verdict is replaced", namespace: verdictNS,
			annotations: map[string]string{VerdictAnnotation: "maybe"}, want: VerdictReset, injected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			lister := &paLister{policies: []*securityv1.PeerAuthentication{
				nsStrict, verdictPA("plain", "default", strictMode, nil, nil),
			}}
			srv := verdictServer(t, lister)
			pod := verdictPodOf(tc.annotations, nginx80)
			pod.Namespace = ""
			resp, got := verdictAdmit(g, srv, pod, verdictReview(g, admissionv1.Create, tc.namespace, pod))
			g.Expect(resp.Allowed).To(BeTrue(), "%+v", resp.Result)
			g.Expect(got.Annotations).To(HaveKeyWithValue(VerdictAnnotation, string(tc.want)))
			g.Expect(findSidecar(&got.Spec) != nil).To(Equal(tc.injected))

			// The rest of the mutation is exactly Webhook's (Inject's).
			want := pod.DeepCopy()
			if tc.injected {
				_, err := Inject(want, Config{})
				g.Expect(err).NotTo(HaveOccurred())
			}
			delete(got.Annotations, VerdictAnnotation)
			delete(want.Annotations, VerdictAnnotation)
			if !strings.Contains(tc.name, "forced verdict is kept") {
				g.Expect(got.Annotations).To(HaveKeyWithValue(VerdictSourceAnnotation, "meshdouble"))
			}
			delete(got.Annotations, VerdictSourceAnnotation)
			if len(want.Annotations) == 0 {
				want.Annotations = nil
			}
			if len(got.Annotations) == 0 {
				got.Annotations = nil
			}
			g.Expect(got.Spec).To(Equal(want.Spec))
			g.Expect(got.Annotations).To(Equal(want.Annotations))
			if !strings.Contains(tc.name, "forced verdict is kept") {
				g.Expect(lister.asked).To(Equal([][]string{{verdictRoot, tc.namespace}}))
			}
		})
	}
}

func TestVerdictWebhookPassesOtherRequestsThrough(t *testing.T) {
	g := NewWithT(t)
	lister := &paLister{policies: []*securityv1.PeerAuthentication{nsStrict}}
	srv := verdictServer(t, lister)
	pod := verdictPodOf(nil, nginx80)
	resp, got := verdictAdmit(g, srv, pod, verdictReview(g, admissionv1.Update, verdictNS, pod))
	g.Expect(resp.Allowed).To(BeTrue())
	g.Expect(resp.Patch).To(BeNil())
	g.Expect(got.Annotations).NotTo(HaveKey(VerdictAnnotation))
	g.Expect(lister.asked).To(BeEmpty())

	// Malformed requests get Webhook's own error answers.
	r, err := http.Post(srv.URL+WebhookPath, "application/json", strings.NewReader("{"))
	g.Expect(err).NotTo(HaveOccurred())
	_ = r.Body.Close()
	g.Expect(r.StatusCode).To(Equal(http.StatusBadRequest))
	r, err = http.Get(srv.URL + WebhookPath)
	g.Expect(err).NotTo(HaveOccurred())
	_ = r.Body.Close()
	g.Expect(r.StatusCode).To(Equal(http.StatusMethodNotAllowed))
	r, err = http.Post(srv.URL+"/other", "application/json", strings.NewReader("{}"))
	g.Expect(err).NotTo(HaveOccurred())
	_ = r.Body.Close()
	g.Expect(r.StatusCode).To(Equal(http.StatusNotFound))
}

func TestVerdictWebhookDeniesWhenPoliciesCannotBeRead(t *testing.T) {
	g := NewWithT(t)
	srv := verdictServer(t, &paLister{err: errors.New("boom")})
	pod := verdictPodOf(nil, nginx80)
	resp, _ := verdictAdmit(g, srv, pod, verdictReview(g, admissionv1.Create, verdictNS, pod))
	g.Expect(resp.Allowed).To(BeFalse())
	g.Expect(resp.Patch).To(BeNil())
	g.Expect(resp.Result.Message).To(ContainSubstring("boom"))
}
