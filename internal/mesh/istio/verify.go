package istio

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// AppProber is one entry of ISTIO_KUBE_APP_PROBERS, the shape of the
// pilot-agent's status.Prober.
type AppProber struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

// VerifyPod inspects a live pod (or an injected pod template) against Istio's
// rewrite. statusPort is the port the pod's probes should target: the value
// StatusPort gives for the pod's annotations.
func VerifyPod(spec *corev1.PodSpec, statusPort int32) probes.PodVerification {
	out := probes.PodVerification{Probes: map[probes.Key]probes.ProbeVerification{}}
	if spec == nil {
		return out
	}
	proxy := findProxy(spec)
	out.SidecarInjected = proxy != nil
	probers, perr := KubeAppProbers(spec)

	for _, ac := range probes.AppContainers(spec, ProxyContainerName) {
		for _, kind := range probes.Kinds {
			pr := probes.ProbeOf(ac.C, kind)
			if pr == nil {
				continue
			}
			p, _, ok := probes.Describe(ac.C, ac.Init, kind, pr)
			if !ok || p.Handler == v1alpha1.HandlerExec {
				continue
			}
			path := ProberPath(ac.C.Name, kind)
			v := probes.ProbeVerification{Target: p.Original}
			entry, found := probers[path]
			if perr == nil && found {
				v.Original = describeProber(entry)
			}
			switch {
			case proxy == nil:
				v.Reason = v1alpha1.StatusReasonNoSidecar
			case !pointsAtAgent(pr, path, statusPort):
				v.Reason = v1alpha1.StatusReasonProbeNotRewritten
			case perr != nil:
				v.Reason = v1alpha1.StatusReasonInvalidKubeAppProbers
			case !found:
				v.Reason = v1alpha1.StatusReasonMissingKubeAppProbersEntry
			default:
				v.Rewritten = true
			}
			out.Probes[p.Key()] = v
		}
	}
	return out
}

// pointsAtAgent reports whether the kubelet probe is Istio's rewrite: an
// httpGet with an integer port equal to statusPort, the agent path, and scheme
// HTTP or unset.
func pointsAtAgent(pr *corev1.Probe, path string, statusPort int32) bool {
	h := pr.HTTPGet
	return h != nil &&
		h.Port.Type == intstr.Int && h.Port.IntVal == statusPort &&
		h.Path == path &&
		(h.Scheme == "" || h.Scheme == corev1.URISchemeHTTP)
}

// describeProber formats an ISTIO_KUBE_APP_PROBERS entry like probes.Probe.Original.
// The entry must have passed validateProber.
func describeProber(e AppProber) string {
	switch {
	case e.HTTPGet != nil:
		return probes.DescribeHTTP(e.HTTPGet.Scheme, e.HTTPGet.Host, strconv.Itoa(int(e.HTTPGet.Port.IntVal)), e.HTTPGet.Path)
	case e.TCPSocket != nil:
		return probes.DescribeTCP(e.TCPSocket.Host, strconv.Itoa(int(e.TCPSocket.Port.IntVal)))
	case e.GRPC != nil:
		return probes.DescribeGRPC(e.GRPC.Port, e.GRPC.Service)
	}
	return ""
}

// findProxy returns istio-proxy from containers, else from initContainers
// (Istio's FindSidecar), or nil.
func findProxy(spec *corev1.PodSpec) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == ProxyContainerName {
			return &spec.Containers[i]
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == ProxyContainerName {
			return &spec.InitContainers[i]
		}
	}
	return nil
}

// appProberPath is the pilot-agent's appProberPattern: every key of
// ISTIO_KUBE_APP_PROBERS must match it.
var appProberPath = regexp.MustCompile(`^/(app-health|app-lifecycle)/[^/]+/(livez|readyz|startupz|prestopz|poststartz)$`)

// KubeAppProbers parses ISTIO_KUBE_APP_PROBERS from the istio-proxy container
// of spec. It returns nil, nil when there is no proxy, no such variable, or an
// empty value (Istio never writes "{}"). It returns an error when the value is
// a document the pilot-agent would refuse at start-up: not a JSON object, a key
// that is not an /app-health/ or /app-lifecycle/ path, an entry without exactly
// one of httpGet, tcpSocket and grpc, or an httpGet/tcpSocket port that is not
// an integer. When the variable is set more than once the last value counts, as
// in the kubelet.
func KubeAppProbers(spec *corev1.PodSpec) (map[string]AppProber, error) {
	if spec == nil {
		return nil, nil
	}
	proxy := findProxy(spec)
	if proxy == nil {
		return nil, nil
	}
	raw := ""
	for _, e := range proxy.Env {
		if e.Name == KubeAppProbersEnv {
			raw = e.Value
		}
	}
	if raw == "" {
		return nil, nil
	}
	var probers map[string]*AppProber
	if err := json.Unmarshal([]byte(raw), &probers); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", KubeAppProbersEnv, err)
	}
	paths := make([]string, 0, len(probers))
	for path := range probers {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	out := make(map[string]AppProber, len(probers))
	for _, path := range paths {
		if err := validateProber(path, probers[path]); err != nil {
			return nil, fmt.Errorf("%s: %w", KubeAppProbersEnv, err)
		}
		out[path] = *probers[path]
	}
	return out, nil
}

// validateProber mirrors the pilot-agent's validateAppKubeProber.
func validateProber(path string, p *AppProber) error {
	if !appProberPath.MatchString(path) {
		return fmt.Errorf("key %q does not match %s", path, appProberPath)
	}
	if p == nil {
		return fmt.Errorf("entry %q is null", path)
	}
	n := 0
	for _, set := range []bool{p.HTTPGet != nil, p.TCPSocket != nil, p.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("entry %q must have exactly one of httpGet, tcpSocket and grpc, has %d", path, n)
	}
	if p.HTTPGet != nil && p.HTTPGet.Port.Type != intstr.Int {
		return fmt.Errorf("entry %q: httpGet port %q is not an integer", path, p.HTTPGet.Port.String())
	}
	if p.TCPSocket != nil && p.TCPSocket.Port.Type != intstr.Int {
		return fmt.Errorf("entry %q: tcpSocket port %q is not an integer", path, p.TCPSocket.Port.String())
	}
	return nil
}

// Originals returns, for a pod spec that Istio's injector already rewrote (a template produced by
// `istioctl kube-inject`, or a live pod), the original probe behind each rewritten one: the
// analysed probes with every probe that VerifyPod finds rewritten replaced by the entry of
// ISTIO_KUBE_APP_PROBERS it points at (handler, port, host and target as the app sees them).
// rewritten counts the probes so replaced; it is 0 for a spec nobody injected.
func Originals(spec *corev1.PodSpec, statusPort int32) (analysed []probes.Probe, rewritten int) {
	analysed = Analyze(spec, statusPort)
	verification := VerifyPod(spec, statusPort)
	probers, err := KubeAppProbers(spec)
	if !verification.SidecarInjected || err != nil {
		return analysed, 0
	}
	for i, p := range analysed {
		v, ok := verification.Probes[p.Key()]
		if ok && (v.Reason == v1alpha1.StatusReasonMissingKubeAppProbersEntry || v.Reason == v1alpha1.StatusReasonInvalidKubeAppProbers) {
			// Rewritten in the template, but the agent has nothing to run: it answers 400.
			analysed[i].Hazard = v.Reason
			analysed[i].HazardMessage = fmt.Sprintf("The %s probe of container %q already points at the agent, but %s holds no valid entry for it, so the agent answers 400.",
				probes.KindWord(p.Kind), p.Container, KubeAppProbersEnv)
			continue
		}
		entry, found := probers[ProberPath(p.Container, p.Kind)]
		if !ok || !v.Rewritten || !found {
			continue
		}
		analysed[i] = originalOf(p, entry, statusPort, spec)
		rewritten++
	}
	return analysed, rewritten
}

// originalOf is the probe an ISTIO_KUBE_APP_PROBERS entry keeps for rewritten probe p, with the
// hazards the original would have had.
func originalOf(p probes.Probe, entry AppProber, statusPort int32, spec *corev1.PodSpec) probes.Probe {
	original := probes.Probe{Container: p.Container, Init: p.Init, Kind: p.Kind, Original: describeProber(entry)}
	pr := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: entry.HTTPGet, TCPSocket: entry.TCPSocket, GRPC: entry.GRPC}}
	switch {
	case entry.HTTPGet != nil:
		original.Handler, original.Port, original.Host = v1alpha1.HandlerHTTP, entry.HTTPGet.Port.IntVal, entry.HTTPGet.Host
	case entry.TCPSocket != nil:
		original.Handler, original.Port, original.Host = v1alpha1.HandlerTCP, entry.TCPSocket.Port.IntVal, entry.TCPSocket.Host
	case entry.GRPC != nil:
		original.Handler, original.Port = v1alpha1.HandlerGRPC, entry.GRPC.Port
	}
	setHazard(&original, pr, true, statusPort, spec)
	return original
}
