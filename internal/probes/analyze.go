package probes

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
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

// Kinds is the order in which each container's probes are listed.
var Kinds = []v1alpha1.ProbeKind{v1alpha1.ProbeReadiness, v1alpha1.ProbeLiveness, v1alpha1.ProbeStartup}

// ProbeOf returns the container's probe of the given kind, or nil.
func ProbeOf(c *corev1.Container, kind v1alpha1.ProbeKind) *corev1.Probe {
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

// AppContainer is a non-proxy container with the list it came from.
type AppContainer struct {
	C    *corev1.Container
	Init bool
}

// AppContainers lists every container and then every init container of the
// spec, in declaration order, without istio-proxy.
func AppContainers(spec *corev1.PodSpec, proxy string) []AppContainer {
	var out []AppContainer
	for i := range spec.Containers {
		if spec.Containers[i].Name != proxy {
			out = append(out, AppContainer{C: &spec.Containers[i]})
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name != proxy {
			out = append(out, AppContainer{C: &spec.InitContainers[i], Init: true})
		}
	}
	return out
}

// ResolvePort resolves a probe port against the container's own ports, as
// both the kubelet and Istio's DumpAppProbers do. ok is false for a name the
// container does not declare.
func ResolvePort(c *corev1.Container, port intstr.IntOrString) (number int32, name string, ok bool) {
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

// Describe fills everything of a Probe except the hazard. ok is false for a
// probe without a handler.
func Describe(c *corev1.Container, init bool, kind v1alpha1.ProbeKind, pr *corev1.Probe) (p Probe, resolved bool, ok bool) {
	p = Probe{Container: c.Name, Init: init, Kind: kind}
	resolved = true
	switch {
	case pr.HTTPGet != nil:
		p.Handler = v1alpha1.HandlerHTTP
		p.Port, p.PortName, resolved = ResolvePort(c, pr.HTTPGet.Port)
		p.Host = pr.HTTPGet.Host
		p.Original = DescribeHTTP(pr.HTTPGet.Scheme, p.Host, PortText(p.Port, p.PortName), pr.HTTPGet.Path)
	case pr.TCPSocket != nil:
		p.Handler = v1alpha1.HandlerTCP
		p.Port, p.PortName, resolved = ResolvePort(c, pr.TCPSocket.Port)
		p.Host = pr.TCPSocket.Host
		p.Original = DescribeTCP(p.Host, PortText(p.Port, p.PortName))
	case pr.GRPC != nil:
		p.Handler = v1alpha1.HandlerGRPC
		p.Port = pr.GRPC.Port
		p.Original = DescribeGRPC(pr.GRPC.Port, pr.GRPC.Service)
	case pr.Exec != nil:
		p.Handler = v1alpha1.HandlerExec
		p.Original = DescribeExec(pr.Exec.Command)
	default:
		return Probe{}, false, false
	}
	return p, resolved, true
}

// PortOwner returns the first other container that declares the named port.
func PortOwner(spec *corev1.PodSpec, name, except, proxy string) string {
	for _, ac := range AppContainers(spec, proxy) {
		if ac.C.Name == except {
			continue
		}
		for _, p := range ac.C.Ports {
			if p.Name == name {
				return ac.C.Name
			}
		}
	}
	return ""
}

func KindWord(kind v1alpha1.ProbeKind) string {
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

// ProbeVerification says whether the mesh redirected one probe of a live pod.
type ProbeVerification struct {
	// Rewritten is true when the kubelet probe is the mesh's redirect of the original and the
	// mesh can run the original (each mesh package says exactly what it checks).
	Rewritten bool
	// Target is what the kubelet probes now, in the format of Probe.Original.
	Target string
	// Original is the original probe as the mesh recorded it (format of Probe.Original), "" if
	// the mesh's record of it is missing or invalid.
	Original string
	// Reason is set when Rewritten is false, for example StatusReasonNoSidecar or
	// StatusReasonProbeNotRewritten; Message, when set, explains it to a person.
	Reason  v1alpha1.StatusReason
	Message string
}

// PodVerification is what a mesh's VerifyPod found on one live pod.
type PodVerification struct {
	// SidecarInjected is true when the mesh's sidecar is in containers or, as a native sidecar, in
	// initContainers.
	SidecarInjected bool
	// Probes has an entry for every HTTP, TCP and GRPC probe of every container and init container
	// except the mesh's sidecar. Exec probes, which no mesh rewrites, are left out.
	Probes map[Key]ProbeVerification
}
