package probes

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

// Probe describes one kubelet probe of a pod template or pod.
type Probe struct {
	// Container is the name of the container that declares the probe.
	Container string
	// Init is true when the probe is declared on an init container (a native
	// sidecar with restartPolicy Always).
	Init bool
	// Kind is Readiness, Liveness or Startup.
	Kind v1alpha1.ProbeKind
	// Handler is HTTP, TCP, GRPC or Exec.
	Handler v1alpha1.ProbeHandler
	// Port is the resolved port number; 0 for exec or an unresolvable named
	// port.
	Port int32
	// PortName is the port name when the probe names its port.
	PortName string
	// Host is httpGet.host or tcpSocket.host, "" when unset.
	Host string
	// Original is what the probe checks, for a person: "HTTP :80/index.html",
	// "HTTPS :8443/healthz", "TCP :2940", "GRPC :9090",
	// "GRPC :9090 service=foo", "exec cat /tmp/healthy". A set host appears
	// before the colon; an unresolvable port name replaces the number.
	Original string
	// Hazard is the reason why redirecting would break the probe, "" if none:
	// StatusReasonHostSet, StatusReasonNamedPortNotDeclared or
	// StatusReasonStatusPortDisabled.
	Hazard v1alpha1.StatusReason
	// HazardMessage explains Hazard in one sentence.
	HazardMessage string
}

// Key identifies a probe within a pod. Container names are unique across
// containers and init containers, so a Key is unique too.
type Key struct {
	Container string
	Kind      v1alpha1.ProbeKind
}

// Key returns the probe's Key.
func (p Probe) Key() Key {
	return Key{Container: p.Container, Kind: p.Kind}
}

// kinds is the order in which each container's probes are listed.
var kinds = []v1alpha1.ProbeKind{v1alpha1.ProbeReadiness, v1alpha1.ProbeLiveness, v1alpha1.ProbeStartup}

// probeOf returns the container's probe of the given kind, or nil.
func probeOf(c *corev1.Container, kind v1alpha1.ProbeKind) *corev1.Probe {
	switch kind {
	case v1alpha1.ProbeReadiness:
		return c.ReadinessProbe
	case v1alpha1.ProbeLiveness:
		return c.LivenessProbe
	case v1alpha1.ProbeStartup:
		return c.StartupProbe
	}
	return nil
}

// appContainer is a non-proxy container with the list it came from.
type appContainer struct {
	c    *corev1.Container
	init bool
}

// appContainers lists every container and then every init container of the
// spec, in declaration order, without istio-proxy.
func appContainers(spec *corev1.PodSpec) []appContainer {
	var out []appContainer
	for i := range spec.Containers {
		if spec.Containers[i].Name != mesh.ProxyContainerName {
			out = append(out, appContainer{c: &spec.Containers[i]})
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name != mesh.ProxyContainerName {
			out = append(out, appContainer{c: &spec.InitContainers[i], init: true})
		}
	}
	return out
}

// resolvePort resolves a probe port against the container's own ports, as
// both the kubelet and Istio's DumpAppProbers do. ok is false for a name the
// container does not declare.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (number int32, name string, ok bool) {
	if port.Type != intstr.String {
		return port.IntVal, "", true
	}
	for _, p := range c.Ports {
		if p.Name != "" && p.Name == port.StrVal {
			return p.ContainerPort, port.StrVal, true
		}
	}
	return 0, port.StrVal, false
}

// describe fills everything of a Probe except the hazard. ok is false for a
// probe without a handler.
func describe(c *corev1.Container, init bool, kind v1alpha1.ProbeKind, pr *corev1.Probe) (p Probe, resolved bool, ok bool) {
	p = Probe{Container: c.Name, Init: init, Kind: kind}
	resolved = true
	switch {
	case pr.HTTPGet != nil:
		p.Handler = v1alpha1.HandlerHTTP
		p.Port, p.PortName, resolved = resolvePort(c, pr.HTTPGet.Port)
		p.Host = pr.HTTPGet.Host
		p.Original = describeHTTP(pr.HTTPGet.Scheme, p.Host, portText(p.Port, p.PortName), pr.HTTPGet.Path)
	case pr.TCPSocket != nil:
		p.Handler = v1alpha1.HandlerTCP
		p.Port, p.PortName, resolved = resolvePort(c, pr.TCPSocket.Port)
		p.Host = pr.TCPSocket.Host
		p.Original = describeTCP(p.Host, portText(p.Port, p.PortName))
	case pr.GRPC != nil:
		p.Handler = v1alpha1.HandlerGRPC
		p.Port = pr.GRPC.Port
		p.Original = describeGRPC(pr.GRPC.Port, pr.GRPC.Service)
	case pr.Exec != nil:
		p.Handler = v1alpha1.HandlerExec
		p.Original = describeExec(pr.Exec.Command)
	default:
		return Probe{}, false, false
	}
	return p, resolved, true
}

// Analyze lists the probes of every container and init container except
// istio-proxy: containers first in declaration order, then init containers,
// and for each container the kinds in the order Readiness, Liveness, Startup.
// Probes without a handler are skipped. Exec probes are listed with Handler
// Exec and never carry a hazard, since Istio leaves them alone.
//
// statusPort is the effective status port (see mesh.StatusPort). When a probe
// has several hazards, the first of StatusPortDisabled (statusPort 0, on every
// HTTP, TCP and GRPC probe), HostSet (httpGet.host set), TCPHostIgnored
// (tcpSocket.host set), PortIsStatusPort (the port is the status port or the
// mesh default 15020), ReservedPort (another port Istio's sidecar reserves) and
// NamedPortNotDeclared (the named port is not declared on the probe's own
// container) is reported.
//
// The other fields of a probe keep their meaning through the rewrite, by Istio's
// source (app_probe.go, rewriteHTTPGetAction and convertProbe; server.go): an
// HTTPS scheme is kept in ISTIO_KUBE_APP_PROBERS and the agent calls the app over
// HTTPS without verifying it, as the kubelet does; httpHeaders stay on the
// kubelet probe and the agent copies every incoming header to the app request;
// grpc.service is kept and the agent asks Health/Check for it; timeoutSeconds
// stays on the kubelet probe and becomes the agent's timeout; the thresholds and
// periods stay on the kubelet probe. None of them is a hazard.
func Analyze(spec *corev1.PodSpec, statusPort int32) []Probe {
	if spec == nil {
		return nil
	}
	var out []Probe
	for _, ac := range appContainers(spec) {
		for _, kind := range kinds {
			pr := probeOf(ac.c, kind)
			if pr == nil {
				continue
			}
			p, resolved, ok := describe(ac.c, ac.init, kind, pr)
			if !ok {
				continue
			}
			setHazard(&p, pr, resolved, statusPort, spec)
			out = append(out, p)
		}
	}
	return out
}

func setHazard(p *Probe, pr *corev1.Probe, resolved bool, statusPort int32, spec *corev1.PodSpec) {
	if p.Handler == v1alpha1.HandlerExec {
		return
	}
	what := fmt.Sprintf("The %s probe of container %q", kindWord(p.Kind), p.Container)
	switch {
	case statusPort == 0:
		p.Hazard = v1alpha1.StatusReasonStatusPortDisabled
		p.HazardMessage = fmt.Sprintf("%s would be redirected to the sidecar's status port, but the pod sets %s to \"0\", so no status server would answer it.",
			what, mesh.StatusPortAnnotation)
	case pr.HTTPGet != nil && pr.HTTPGet.Host != "":
		p.Hazard = v1alpha1.StatusReasonHostSet
		p.HazardMessage = fmt.Sprintf("%s sets httpGet.host %q, which Istio keeps, so the kubelet would call %s:%d%s instead of the pod's sidecar.",
			what, pr.HTTPGet.Host, pr.HTTPGet.Host, statusPort, mesh.ProberPath(p.Container, p.Kind))
	case pr.TCPSocket != nil && pr.TCPSocket.Host != "":
		p.Hazard = v1alpha1.StatusReasonTCPHostIgnored
		p.HazardMessage = fmt.Sprintf("%s dials host %q; the rewritten probe asks the sidecar, which dials the pod's own IP instead, so the probe would no longer check %s.",
			what, pr.TCPSocket.Host, pr.TCPSocket.Host)
	case resolved && p.Port != 0 && (p.Port == statusPort || p.Port == mesh.DefaultStatusPort) && !alreadyRewritten(pr, p):
		p.Hazard = v1alpha1.StatusReasonPortIsStatusPort
		p.HazardMessage = fmt.Sprintf("%s targets port %d, the sidecar's status port; Istio takes it for a probe it already rewrote and keeps no original probe for the agent to run.",
			what, p.Port)
	case resolved && reservedPorts[p.Port]:
		p.Hazard = v1alpha1.StatusReasonReservedPort
		p.HazardMessage = fmt.Sprintf("%s targets port %d, which Istio's sidecar reserves, so it checks the sidecar rather than the app.", what, p.Port)
	case !resolved:
		elsewhere := ""
		if owner := portOwner(spec, p.PortName, p.Container); owner != "" {
			elsewhere = fmt.Sprintf(" (only container %q does)", owner)
		}
		p.Hazard = v1alpha1.StatusReasonNamedPortNotDeclared
		p.HazardMessage = fmt.Sprintf("%s uses port name %q, which that container does not declare%s, so Istio would leave it out of %s and the sidecar would answer the rewritten probe with HTTP 400.",
			what, p.PortName, elsewhere, mesh.KubeAppProbersEnv)
	}
}

// alreadyRewritten reports whether pr is Istio's own rewrite of p: an httpGet at p's
// /app-health/... path, as in a template that `istioctl kube-inject` produced.
func alreadyRewritten(pr *corev1.Probe, p *Probe) bool {
	return pr.HTTPGet != nil && pr.HTTPGet.Path == mesh.ProberPath(p.Container, p.Kind)
}

// reservedPorts are the ports Istio's sidecar uses besides the status port (istio.io, Application
// Requirements, "Ports used by Istio").
var reservedPorts = map[int32]bool{15000: true, 15001: true, 15004: true, 15006: true, 15008: true, 15009: true, 15021: true, 15053: true, 15090: true}

// portOwner returns the first other container that declares the named port.
func portOwner(spec *corev1.PodSpec, name, except string) string {
	for _, ac := range appContainers(spec) {
		if ac.c.Name == except {
			continue
		}
		for _, p := range ac.c.Ports {
			if p.Name == name {
				return ac.c.Name
			}
		}
	}
	return ""
}

func kindWord(kind v1alpha1.ProbeKind) string {
	switch kind {
	case v1alpha1.ProbeReadiness:
		return "readiness"
	case v1alpha1.ProbeLiveness:
		return "liveness"
	case v1alpha1.ProbeStartup:
		return "startup"
	}
	return string(kind)
}

// RewrittenTarget formats where Istio's rewrite points the probe, for example
// "HTTP :15020/app-health/web/readyz": always plain HTTP on statusPort at
// mesh.ProberPath. An httpGet.host is kept by Istio and so appears in the
// target; TCP and GRPC probes become a fresh httpGet without a host. It returns
// "" for exec probes, which Istio does not rewrite.
func RewrittenTarget(p Probe, statusPort int32) string {
	switch p.Handler {
	case v1alpha1.HandlerHTTP:
		return describeHTTP(corev1.URISchemeHTTP, p.Host, strconv.Itoa(int(statusPort)), mesh.ProberPath(p.Container, p.Kind))
	case v1alpha1.HandlerTCP, v1alpha1.HandlerGRPC:
		return describeHTTP(corev1.URISchemeHTTP, "", strconv.Itoa(int(statusPort)), mesh.ProberPath(p.Container, p.Kind))
	}
	return ""
}

// MarkStartupBeforeProxy marks, when istio-proxy runs as an ordinary container (nativeSidecar
// false), the HTTP, TCP and gRPC startup probes of init containers with the hazard
// StatusReasonStartupProbeBeforeSidecar, unless they already carry one. Only init containers
// with restartPolicy Always can declare probes, and the kubelet starts the pod's ordinary
// containers, istio-proxy among them, only after each such startup probe passed; Istio rewrites
// the probe to istio-proxy's status port all the same (app_probe.go, patchRewriteProbe), so the
// probe can never pass. With native sidecars istio-proxy is itself an init container placed first
// (webhook.go, reorderPod), and the probe works.
func MarkStartupBeforeProxy(analysed []Probe, nativeSidecar bool) {
	if nativeSidecar {
		return
	}
	for i := range analysed {
		p := &analysed[i]
		if !p.Init || p.Kind != v1alpha1.ProbeStartup || p.Handler == v1alpha1.HandlerExec || p.Hazard != "" {
			continue
		}
		p.Hazard = v1alpha1.StatusReasonStartupProbeBeforeSidecar
		p.HazardMessage = fmt.Sprintf("The startup probe of init container %q would be redirected to istio-proxy, but istio-proxy runs as an ordinary container, "+
			"which starts only after this probe passed, so the pod would never leave initialisation; turn native sidecars on (%s: \"true\") or drop that startup probe.",
			p.Container, mesh.NativeSidecarAnnotation)
	}
}
