package meshdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// This file is the "kubelet side" of the simulation: it decides, at pod
// admission, how the pod's probes WOULD fare on a real node with a real
// sidecar, and records the outcome in one pod annotation (VerdictAnnotation).
// kwok, which plays the kubelet in test/localcluster, then acts it out with
// the stages in hack/kwok/pod-stages.yaml: Ready or not, and which Warning
// Unhealthy event kubelet would repeat.
//
// Facts are cited from shared/reference/mesh-probes.md ("the doc").

// VerdictAnnotation is the pod annotation VerdictWebhook sets at admission.
const VerdictAnnotation = "meshdouble.proberedirect.io/probe-verdict"

// VerdictSourceAnnotation names the verdict layer (VerdictWebhook.Source)
// that wrote VerdictAnnotation. A verdict without it was set by the pod's
// author and is kept; one with it came from an earlier verdict layer in the
// API server's webhook chain (Istio's and Kuma's injectors both carry one)
// and is judged again by a later layer whose injector mutated the pod.
const VerdictSourceAnnotation = "meshdouble.proberedirect.io/probe-verdict-by"

// ProbeVerdict is the simulated outcome of a pod's probes.
type ProbeVerdict string

const (
	// VerdictPass: every probe succeeds; the pod becomes Ready.
	VerdictPass ProbeVerdict = "pass"
	// VerdictReset: kubelet's HTTP/gRPC probe reaches the app port through
	// the sidecar under STRICT mTLS and gets "connection reset by peer".
	VerdictReset ProbeVerdict = "reset"
	// VerdictStatus500: a rewritten probe's target cannot be dialled by the
	// agent, which answers kubelet with 500.
	VerdictStatus500 ProbeVerdict = "status500"
	// VerdictStatus400: a rewritten probe has no entry in
	// ISTIO_KUBE_APP_PROBERS (a named port the container does not declare),
	// so the agent answers kubelet with 400.
	VerdictStatus400 ProbeVerdict = "status400"
	// VerdictStatus503: Kuma's application probe proxy (kuma-dp) cannot dial a
	// redirected TCP probe's target and answers 503 UNHEALTHY.
	VerdictStatus503 ProbeVerdict = "status503"
	// VerdictNeverReady: the app itself never becomes ready (fault injection
	// for rollout-deadline tests: an image whose name contains "never-ready").
	VerdictNeverReady ProbeVerdict = "never-ready"
)

// Verdicts lists every verdict, the values VerdictAnnotation may hold.
var Verdicts = []ProbeVerdict{VerdictPass, VerdictReset, VerdictStatus500, VerdictStatus503, VerdictStatus400, VerdictNeverReady}

// Probe handler kinds as seen in ProbeFacts.
const (
	HandlerHTTP = "http"
	HandlerTCP  = "tcp"
	HandlerGRPC = "grpc"
	HandlerExec = "exec"
	// HandlerNone marks the one fact of a container that has no probe at all
	// (so that container-level rules such as never-ready still see it).
	HandlerNone = "none"
)

// The capture annotations read to decide whether an app port goes through
// Envoy (doc §2.4: "traffic.sidecar.istio.io/excludeInboundPorts for the
// probe port" is an alternative to rewriting).
const (
	excludeInboundPortsAnnotation = "traffic.sidecar.istio.io/excludeInboundPorts"
	includeInboundPortsAnnotation = "traffic.sidecar.istio.io/includeInboundPorts"
)

// ProbeFacts is what the simulation knows about one probe of one container
// after admission (after Inject has run, if the pod was injected).
type ProbeFacts struct {
	// Container and Image of the container the probe belongs to.
	Container, Image string
	// Kind is readiness, liveness or startup ("" for a HandlerNone fact).
	Kind string
	// Handler is what kubelet runs: HandlerHTTP, HandlerTCP, HandlerGRPC,
	// HandlerExec, or HandlerNone when the container has no probe.
	Handler string
	// Sidecar: the pod has an istio-proxy container.
	Sidecar bool
	// Rewritten: kubelet's probe targets the agent (status port,
	// /app-health/<container>/<kind>z).
	Rewritten bool
	// AgentEntry: for a rewritten probe, ISTIO_KUBE_APP_PROBERS has an
	// entry for its path; AgentHandler is that entry's handler.
	AgentEntry   bool
	AgentHandler string
	// AppPort is the application port finally dialled, by kubelet directly
	// or by the agent for a rewritten probe; 0 when unknown (an unresolved
	// named port, exec).
	AppPort int32
	// PortDeclared: AppPort is one of the container's ports[].containerPort.
	PortDeclared bool
	// Captured: AppPort is redirected to Envoy (a sidecar is present and the
	// port is not excluded from inbound capture).
	Captured bool
	// Mode is the effective PeerAuthentication mode on AppPort (for a pod
	// with kuma-sidecar: the effective Kuma mTLS mode, see KumaModes).
	Mode v1alpha1.MTLSMode

	// KumaSidecar: the pod has a kuma-sidecar container (kuma.go).
	KumaSidecar bool
	// KumaRedirected: kubelet's probe targets Kuma's application probe proxy
	// (the kuma.io/application-probe-proxy-port port, path /<port>/...,
	// /tcp/<port> or /grpc/<port>) or a legacy virtual probe (the
	// kuma.io/virtual-probes-port port, path /<port>/...); AppPort is then
	// the port encoded in the path and AgentHandler what the proxy runs.
	KumaRedirected bool
	// KumaCaptured: AppPort is redirected to Kuma's Envoy (kuma-sidecar
	// present, not a gateway pod, port not in kuma-init's
	// --exclude-inbound-ports).
	KumaCaptured bool
}

// VerdictRule is one row of VerdictRules.
type VerdictRule struct {
	// Name identifies the rule in reasons and tests.
	Name string
	// Verdict is what the pod gets when the rule matches.
	Verdict ProbeVerdict
	// Doc cites the fact the rule encodes.
	Doc string
	// When reports whether the rule applies to one probe.
	When func(f ProbeFacts) bool
}

// VerdictRules is the declarative table the double applies, for Istio's
// sidecar and Kuma's alike (the kuma-* rows). Every probe
// (readiness, liveness, startup) of every container except istio-proxy and
// kuma-sidecar, and
// every container without any probe, yields one ProbeFacts; for each, the
// FIRST matching rule gives its verdict. The pod's verdict is the verdict of
// the EARLIEST rule in this table that any of its facts matched; with no
// match at all it is VerdictPass. The table is therefore ordered by
// severity.
//
// Simplifications: every probe kind counts (a failing liveness or startup
// probe also makes the workload unhealthy), while the kwok stages always
// word the event as a readiness failure; an un-rewritten probe to a port
// nothing listens on without a sidecar is not simulated (pass).
var VerdictRules = []VerdictRule{
	{
		// Not a mesh behaviour: the tests' fault injection. An app that
		// never becomes ready, whatever the probe path, so a Deployment
		// rollout runs into its progressDeadlineSeconds.
		Name:    "never-ready-image",
		Verdict: VerdictNeverReady,
		Doc:     "test fault injection: image name contains \"never-ready\"",
		When:    func(f ProbeFacts) bool { return strings.Contains(f.Image, "never-ready") },
	},
	{
		// mesh-probes.md §2.4 "#26737 connection reset under STRICT" (and §6
		// #10): without the rewrite kubelet -> podIP:appPort is captured by
		// Envoy; kubelet has no mesh certificate, so under STRICT the
		// connection is reset. Applies to HTTP and gRPC probes (plaintext
		// application protocols); a TCP probe only needs the connect (next
		// rules).
		Name:    "strict-mtls-resets-direct-probe",
		Verdict: VerdictReset,
		Doc:     "mesh-probes.md §2.4, §6 #10: istio/istio#26737 connection reset under STRICT",
		When: func(f ProbeFacts) bool {
			return !f.Rewritten && (f.Handler == HandlerHTTP || f.Handler == HandlerGRPC) &&
				f.Captured && f.Mode == v1alpha1.MTLSStrict
		},
	},
	{
		// Kuma's counterpart of the rule above (mesh-probes.md §4.4, §4.1):
		// a probe kubelet sends straight to an app port is captured by
		// kuma-sidecar's Envoy; under the workload's STRICT mode (Mesh
		// mtls backend mode, or a MeshTLS Strict override) its inbound
		// listener accepts only mesh TLS, so kubelet's plaintext HTTP/gRPC
		// is reset. Only a probe rewritten to the probe proxy port, which
		// kuma-init excludes from capture, or a virtual probe avoids it.
		Name:    "kuma-strict-mtls-resets-direct-probe",
		Verdict: VerdictReset,
		Doc:     "mesh-probes.md §4.1 (probe proxy port excluded from capture), §4.4 (STRICT default), §6: kubelet has no mesh certificate",
		When: func(f ProbeFacts) bool {
			return f.KumaSidecar && !f.KumaRedirected && (f.Handler == HandlerHTTP || f.Handler == HandlerGRPC) &&
				f.KumaCaptured && f.Mode == v1alpha1.MTLSStrict
		},
	},
	{
		// mesh-probes.md §1.8 "TCP: 500 if the port is closed": a rewritten
		// TCP probe makes the agent dial podIP:port; the simulation takes a
		// port the container does not declare as closed. (This is the case
		// release note 33734 warns about: TCP probes that passed only because
		// of the sidecar start failing once rewritten.)
		Name:    "agent-tcp-dial-fails",
		Verdict: VerdictStatus500,
		Doc:     "mesh-probes.md §1.8: TCP: 200 if the connection opens, 500 if not; §6 #1 upgrade note 33734",
		When: func(f ProbeFacts) bool {
			return f.Rewritten && f.AgentEntry && f.AgentHandler == HandlerTCP && !f.PortDeclared
		},
	},
	{
		// mesh-probes.md §1.6 / §1.4: a named port missing from the
		// container's ports drops the ISTIO_KUBE_APP_PROBERS entry while the
		// kubelet probe is still rewritten; the agent answers 400 "app
		// prober config does not exists".
		Name:    "agent-has-no-entry",
		Verdict: VerdictStatus400,
		Doc:     "mesh-probes.md §1.6 named ports, §1.4: a path with no entry gets HTTP 400",
		When:    func(f ProbeFacts) bool { return f.Rewritten && !f.AgentEntry },
	},
	{
		// mesh-probes.md §6 #1 "sidecar makes every TCP port look open":
		// an un-rewritten TCP probe connects to Envoy, which accepts, so it
		// passes whatever the app does (the false positive), even under
		// STRICT (the handshake is not attempted by a TCP probe).
		Name:    "sidecar-tcp-looks-open",
		Verdict: VerdictPass,
		Doc:     "mesh-probes.md §6 #1: istio/istio#15178, a sidecar makes every TCP port look open",
		When:    func(f ProbeFacts) bool { return !f.Rewritten && f.Sidecar && f.Handler == HandlerTCP },
	},
	{
		// The same false positive with Kuma: kuma-sidecar's Envoy accepts
		// the TCP connection on every captured inbound port, so an
		// unredirected TCP probe passes even when the app is down.
		Name:    "kuma-sidecar-tcp-looks-open",
		Verdict: VerdictPass,
		Doc:     "mesh-probes.md §6 #1 (a sidecar makes every TCP port look open), applied to Kuma's inbound capture (§4.1)",
		When: func(f ProbeFacts) bool {
			return f.KumaSidecar && !f.KumaRedirected && f.Handler == HandlerTCP && f.KumaCaptured
		},
	},
	{
		// mesh-probes.md §4.1: kuma-dp's TCP route dials podIP:port and
		// answers 503 UNHEALTHY when the dial fails; the simulation takes a
		// port the container does not declare as closed (the counterpart of
		// agent-tcp-dial-fails: a TCP probe that passed only because of the
		// sidecar fails once redirected).
		Name:    "kuma-dp-tcp-dial-fails",
		Verdict: VerdictStatus503,
		Doc:     "mesh-probes.md §4.1: TCP/gRPC: 200 HEALTHY, otherwise 503 UNHEALTHY",
		When: func(f ProbeFacts) bool {
			return f.KumaRedirected && f.AgentHandler == HandlerTCP && !f.PortDeclared
		},
	},
	{
		// mesh-probes.md §4.1/§4.2: a probe rewritten to the application
		// probe proxy (kuma-dp, port excluded from capture, dials the pod
		// IP from 127.0.0.6) or to a virtual probe (an Envoy listener
		// without mTLS) bypasses mTLS and follows the app's health, which
		// the simulation takes as healthy unless a rule above said
		// otherwise (never-ready).
		Name:    "kuma-redirected-probe-bypasses-mtls",
		Verdict: VerdictPass,
		Doc:     "mesh-probes.md §4.1 application probe proxy, §4.2 virtual probes, §7",
		When:    func(f ProbeFacts) bool { return f.KumaRedirected },
	},
	{
		// mesh-probes.md §1.11 #5 / §2.4: rewritten probes hit the status
		// port, which is excluded from capture, so PeerAuthentication does
		// not apply; the agent then reaches the app from 127.0.0.6 (§1.7).
		Name:    "rewritten-probe-bypasses-mtls",
		Verdict: VerdictPass,
		Doc:     "mesh-probes.md §1.11 #5, §2.4: the status port is outside the mesh",
		When:    func(f ProbeFacts) bool { return f.Rewritten },
	},
}

// Judgement is the result of Judge.
type Judgement struct {
	Verdict ProbeVerdict
	// Rule is the name of the deciding rule ("" for the default pass).
	Rule string
	// Container and Kind locate the probe that decided.
	Container, Kind string
}

// Reason is a one-line explanation.
func (j Judgement) Reason() string {
	if j.Rule == "" {
		return string(j.Verdict) + ": no rule matched"
	}
	return fmt.Sprintf("%s: rule %s (container %q, %s probe)", j.Verdict, j.Rule, j.Container, j.Kind)
}

// PortModes gives the effective mTLS mode of one workload on an application
// port; port 0 asks for the workload-wide mode.
type PortModes func(port int32) v1alpha1.MTLSMode

// ModeResolver returns the PortModes of the workload a pod at admission
// belongs to (its namespace and labels). An error denies the pod.
type ModeResolver func(ctx context.Context, namespace string, podLabels map[string]string) (PortModes, error)

// Judge applies VerdictRules to pod as it stands after admission (after the
// injector, if injected). meshStatusPort is the mesh's
// defaultConfig.statusPort (0 means 15020); modes gives the effective
// PeerAuthentication modes of the pod's workload (nil means no policy:
// PERMISSIVE).
func Judge(pod *corev1.Pod, meshStatusPort int32, modes PortModes) Judgement {
	facts := CollectFacts(pod, meshStatusPort, modes)
	best := Judgement{Verdict: VerdictPass}
	bestIndex := len(VerdictRules)
	for _, f := range facts {
		for i, r := range VerdictRules {
			if i >= bestIndex {
				break
			}
			if r.When(f) {
				best = Judgement{Verdict: r.Verdict, Rule: r.Name, Container: f.Container, Kind: f.Kind}
				bestIndex = i
				break
			}
		}
	}
	return best
}

// CollectFacts returns the ProbeFacts of every probe of every container and
// init container of pod except istio-proxy, plus one HandlerNone fact for
// each such container without any probe.
func CollectFacts(pod *corev1.Pod, meshStatusPort int32, modes PortModes) []ProbeFacts {
	if modes == nil {
		modes = func(int32) v1alpha1.MTLSMode { return v1alpha1.MTLSPermissive }
	}
	if meshStatusPort == 0 {
		meshStatusPort = istiomesh.DefaultStatusPort
	}
	sidecar := findSidecar(&pod.Spec)
	// An invalid annotation was rejected by the injector already; fall back quietly.
	statusPort, _ := istiomesh.StatusPort(pod.Annotations, meshStatusPort)
	entries := map[string]*prober{}
	if sidecar != nil {
		for _, e := range sidecar.Env {
			if e.Name == istiomesh.KubeAppProbersEnv && e.Value != "" {
				_ = json.Unmarshal([]byte(e.Value), &entries) // unreadable: no entries
			}
		}
	}
	capture := newCaptureSet(pod.Annotations, statusPort)
	kuma := findKumaSidecar(&pod.Spec) != nil

	var out []ProbeFacts
	for _, c := range allContainers(&pod.Spec) {
		if c.Name == istiomesh.ProxyContainerName || c.Name == KumaSidecarName {
			continue
		}
		urls := formatProberURL(c.Name)
		base := ProbeFacts{Container: c.Name, Image: c.Image, Sidecar: sidecar != nil, KumaSidecar: kuma}
		n := 0
		for _, p := range []struct {
			kind, url string
			probe     *corev1.Probe
		}{
			{"readiness", urls.readyz, c.ReadinessProbe},
			{"liveness", urls.livez, c.LivenessProbe},
			{"startup", urls.startupz, c.StartupProbe},
		} {
			if p.probe == nil {
				continue
			}
			n++
			f := base
			f.Kind = p.kind
			f.Handler = handlerOf(p.probe.ProbeHandler)
			if h := p.probe.HTTPGet; h != nil && h.Path == p.url && h.Port.Type == intstr.Int && h.Port.IntVal == statusPort {
				// Kubelet asks the agent, which dials the original target.
				f.Rewritten = true
				if e := entries[p.url]; e != nil {
					f.AgentEntry = true
					f.AgentHandler = proberHandler(e)
					f.AppPort = proberPort(e, &c)
				}
			} else if handler, port, ok := kumaRedirect(pod.Annotations, p.probe); kuma && ok {
				// Kubelet asks Kuma's probe proxy (or a virtual probe).
				f.KumaRedirected = true
				f.AgentHandler = handler
				f.AppPort = port
			} else if direct := probeToProber(p.probe); direct != nil {
				f.AppPort = proberPort(direct, &c)
			}
			if f.AppPort > 0 {
				f.PortDeclared = slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
					return cp.ContainerPort == f.AppPort && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP)
				})
				f.Captured = sidecar != nil && capture.captured(f.AppPort)
				f.KumaCaptured = kuma && !f.KumaRedirected && kumaCaptured(pod.Annotations, f.AppPort)
				f.Mode = modes(f.AppPort)
			} else {
				f.Mode = modes(0)
			}
			out = append(out, f)
		}
		if n == 0 {
			f := base
			f.Handler = HandlerNone
			f.Mode = modes(0)
			out = append(out, f)
		}
	}
	return out
}

func handlerOf(h corev1.ProbeHandler) string {
	switch {
	case h.HTTPGet != nil:
		return HandlerHTTP
	case h.TCPSocket != nil:
		return HandlerTCP
	case h.GRPC != nil:
		return HandlerGRPC
	}
	return HandlerExec
}

func proberHandler(p *prober) string {
	switch {
	case p.HTTPGet != nil:
		return HandlerHTTP
	case p.TCPSocket != nil:
		return HandlerTCP
	case p.GRPC != nil:
		return HandlerGRPC
	}
	return ""
}

// proberPort resolves the port of p (named ports through c's ports); 0 when
// it cannot be resolved.
func proberPort(p *prober, c *corev1.Container) int32 {
	var port intstr.IntOrString
	switch {
	case p.HTTPGet != nil:
		port = p.HTTPGet.Port
	case p.TCPSocket != nil:
		port = p.TCPSocket.Port
	case p.GRPC != nil:
		return p.GRPC.Port
	default:
		return 0
	}
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name != "" && cp.Name == port.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// captureSet models the inbound capture of the sidecar's iptables rules:
// includeInboundPorts ("*" by default: every port), minus excludeInboundPorts,
// minus the ports the injection template always excludes (15090, 15021 and
// the status port; doc §1.9).
type captureSet struct {
	all      bool
	include  map[int32]bool
	excluded map[int32]bool
}

func newCaptureSet(annotations map[string]string, statusPort int32) captureSet {
	s := captureSet{all: true, excluded: map[int32]bool{proxyPromPort: true, proxyHealthPort: true, statusPort: true}}
	if v, ok := annotations[includeInboundPortsAnnotation]; ok && strings.TrimSpace(v) != "*" {
		s.all = false
		s.include = parsePorts(v)
	}
	for p := range parsePorts(annotations[excludeInboundPortsAnnotation]) {
		s.excluded[p] = true
	}
	return s
}

func (s captureSet) captured(port int32) bool {
	if s.excluded[port] {
		return false
	}
	return s.all || s.include[port]
}

func parsePorts(list string) map[int32]bool {
	out := map[int32]bool{}
	for _, f := range strings.Split(list, ",") {
		if n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16); err == nil {
			out[int32(n)] = true
		}
	}
	return out
}

// VerdictWebhook is the kubelet-side simulation put behind an injector: for
// every Pod CREATE that Injector admits, it applies Injector's mutation,
// judges the result with Judge (VerdictRules) and adds VerdictAnnotation,
// answering with one JSON Patch for both. Pods that are not injected get a
// verdict too (no sidecar: no mTLS, no rewrite). A pod that already carries a
// valid VerdictAnnotation keeps it (tests may force a verdict), unless an
// earlier verdict layer wrote it (VerdictSourceAnnotation) and this layer's
// injector mutated the pod: with Istio's and Kuma's injectors both
// registered, the layer of the injector that injected has the last word
// whatever the order the API server calls them in. Everything
// else (other paths, resources and operations, denials, malformed reviews)
// is Injector's answer unchanged.
type VerdictWebhook struct {
	// Injector is the sidecar injector: Istio's own webhook (test/istio) or
	// the double's Webhook. Required.
	Injector http.Handler
	// MeshStatusPort is the mesh's defaultConfig.statusPort; 0 means 15020.
	MeshStatusPort int32
	// Modes resolves the effective mTLS modes of the pod's workload. nil
	// means no PeerAuthentication anywhere (PERMISSIVE). Behind Kuma's
	// injector: KumaModes.
	Modes ModeResolver
	// Path is the injector's webhook path; "" means WebhookPath (Istio's
	// "/inject"); Kuma's is KumaWebhookPath.
	Path string
	// Source names this layer in VerdictSourceAnnotation; "" means
	// "meshdouble".
	Source string
}

// ServeHTTP implements http.Handler.
func (v *VerdictWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	path := v.Path
	if path == "" {
		path = WebhookPath
	}
	if r.URL.Path != path || r.Method != http.MethodPost {
		v.Injector.ServeHTTP(rw, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		http.Error(rw, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	inner := r.Clone(r.Context())
	inner.Body = io.NopCloser(bytes.NewReader(body))
	inner.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	v.Injector.ServeHTTP(rec, inner)

	out := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		if changed, err := v.addVerdict(r.Context(), body, out); err != nil {
			http.Error(rw, "meshdouble verdict: "+err.Error(), http.StatusInternalServerError)
			return
		} else if changed != nil {
			out = changed
		}
	}
	for k, vs := range rec.Header() {
		rw.Header()[k] = vs
	}
	rw.Header().Del("Content-Length")
	rw.WriteHeader(rec.Code)
	_, _ = rw.Write(out)
}

// addVerdict returns the re-encoded response review with the verdict added,
// or nil when the response stays as it is.
func (v *VerdictWebhook) addVerdict(ctx context.Context, reqBody, respBody []byte) ([]byte, error) {
	var req, resp admissionv1.AdmissionReview
	if err := json.Unmarshal(reqBody, &req); err != nil || req.Request == nil {
		return nil, nil // the injector has answered it already
	}
	if err := json.Unmarshal(respBody, &resp); err != nil {
		return nil, fmt.Errorf("decoding the injector's response: %w", err)
	}
	ar := req.Request
	if ar.Resource != podsResource || ar.SubResource != "" || ar.Operation != admissionv1.Create ||
		resp.Response == nil || !resp.Response.Allowed {
		return nil, nil
	}

	mutatedJSON := ar.Object.Raw
	if len(resp.Response.Patch) > 0 {
		p, err := jsonpatchapply.DecodePatch(resp.Response.Patch)
		if err != nil {
			return nil, fmt.Errorf("decoding the injector's patch: %w", err)
		}
		if mutatedJSON, err = p.Apply(ar.Object.Raw); err != nil {
			return nil, fmt.Errorf("applying the injector's patch: %w", err)
		}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(mutatedJSON, &pod); err != nil {
		return nil, fmt.Errorf("decoding the mutated pod: %w", err)
	}
	namespace := ar.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}

	if slices.Contains(Verdicts, ProbeVerdict(pod.Annotations[VerdictAnnotation])) {
		if _, byLayer := pod.Annotations[VerdictSourceAnnotation]; !byLayer || len(resp.Response.Patch) == 0 {
			// Forced by the pod's author, or an earlier layer judged a pod
			// this layer's injector left as it was.
			return nil, nil
		}
	}
	var modes PortModes
	if v.Modes != nil {
		var err error
		if modes, err = v.Modes(ctx, namespace, pod.Labels); err != nil {
			resp.Response = deny(http.StatusInternalServerError, "resolving the mTLS mode: %v", err)
			resp.Response.UID = ar.UID
			return json.Marshal(resp)
		}
	}
	j := Judge(&pod, v.MeshStatusPort, modes)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[VerdictAnnotation] = string(j.Verdict)
	pod.Annotations[VerdictSourceAnnotation] = v.Source
	if v.Source == "" {
		pod.Annotations[VerdictSourceAnnotation] = "meshdouble"
	}

	final, err := json.Marshal(&pod)
	if err != nil {
		return nil, fmt.Errorf("encoding pod: %w", err)
	}
	// The patch is computed against the pod as the API server sent it, so it
	// replaces the injector's patch rather than adding to it.
	ops, err := jsonpatch.CreatePatch(ar.Object.Raw, final)
	if err != nil {
		return nil, fmt.Errorf("creating patch: %w", err)
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding patch: %w", err)
	}
	patchType := admissionv1.PatchTypeJSONPatch
	resp.Response.Patch = patch
	resp.Response.PatchType = &patchType
	resp.Response.AuditAnnotations = map[string]string{"probe-verdict": j.Reason()}
	return json.Marshal(resp)
}

// OperatorModes is a ModeResolver built on the operator's own
// PeerAuthentication resolution (internal/mesh/istio), for the double only: the
// end-to-end tests resolve modes with Istio's code (test/istio), so that a
// mistake in internal/mtls cannot agree with itself. rootNamespace "" means
// istio-system; list returns the PeerAuthentications of the given namespaces
// (nil: none).
func OperatorModes(rootNamespace string, list func(ctx context.Context, namespaces ...string) ([]*securityv1.PeerAuthentication, error)) ModeResolver {
	if rootNamespace == "" {
		rootNamespace = "istio-system"
	}
	return func(ctx context.Context, namespace string, podLabels map[string]string) (PortModes, error) {
		var policies []*securityv1.PeerAuthentication
		if list != nil {
			namespaces := []string{rootNamespace}
			if namespace != rootNamespace {
				namespaces = append(namespaces, namespace)
			}
			var err error
			if policies, err = list(ctx, namespaces...); err != nil {
				return nil, fmt.Errorf("listing PeerAuthentications: %w", err)
			}
		}
		workload := istiomesh.NewResolver(rootNamespace, policies).ForWorkload(namespace, podLabels)
		return func(port int32) v1alpha1.MTLSMode {
			if port == 0 {
				return workload.Mode
			}
			return workload.ForPort(port)
		}, nil
	}
}
