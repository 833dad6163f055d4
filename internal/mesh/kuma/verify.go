package kuma

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// virtualProbesOn reports whether annotations switch Kuma's legacy virtual probes on, and their
// port (kuma.io/virtual-probes-port, else DefaultVirtualProbesPort). Kuma's injector writes both
// annotations on every pod it injects (injector.go, NewAnnotations), so on a live pod they say
// what the injector did. An invalid value counts as off.
func virtualProbesOn(annotations map[string]string) (on bool, port int32) {
	port = DefaultVirtualProbesPort
	if raw, ok := annotations[VirtualProbesPortAnnotation]; ok {
		if u, err := parseUint32(VirtualProbesPortAnnotation, raw); err == nil && u <= 65535 {
			port = int32(u)
		}
	}
	raw, ok := annotations[VirtualProbesAnnotation]
	if !ok {
		return false, port
	}
	on, err := parseEnabled(VirtualProbesAnnotation, raw)
	return err == nil && on, port
}

// findProxy returns kuma-sidecar from containers, else from initContainers (a native sidecar), or
// nil.
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

// initAfterProxy returns the init containers that come after kuma-sidecar in initContainers and
// have restartPolicy Always: the only init containers whose probes Kuma rewrites
// (pod_probe_overrider.go, SetupAppProbeProxies; webhooks/injector/probes.go, overrideHTTPProbes).
func initAfterProxy(spec *corev1.PodSpec) map[string]bool {
	out := map[string]bool{}
	after := false
	for _, c := range spec.InitContainers {
		if c.Name == ProxyContainerName {
			after = true
			continue
		}
		if after && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			out[c.Name] = true
		}
	}
	return out
}

// Originals analyses a pod spec (a template, or a live or injected pod) as Kuma sees it: one
// probes.Probe per probe of every container and init container except kuma-sidecar (containers
// first, then init containers, in declaration order; per container Readiness, Liveness, Startup;
// probes without a handler skipped), with Original in the probes.Probe.Original format. A probe
// already in Kuma's rewritten form (the application probe proxy's on proxyPort, or, when
// annotations switch virtual probes on, a virtual probe on their port) is replaced by the original
// read back from its path and X-Kuma-Probes-* headers; rewritten counts those.
//
// Hazards, the first that applies, for HTTP, TCP and gRPC probes that are not yet rewritten:
//
//   - GatewayPod: annotations carry kuma.io/gateway; Kuma never redirects a gateway's probes and
//     refuses a gateway pod that asks for the probe proxy (pod_probe_overrider.go,
//     SetApplicationProbeProxyPortAnnotation).
//   - ProbePortIsProxyPort: the probe's port (after name resolution) is proxyPort; Kuma's injector
//     refuses the pod (probe_converter.go, ToVirtual).
//   - ProbeProxyPortInUse: a container of the pod declares proxyPort as a containerPort, so the app
//     and kuma-dp's probe listener would both need it.
//   - ProbeHostDropped: httpGet.host or tcpSocket.host is set; Kuma's converter builds a new
//     httpGet without it and kuma-dp probes the pod's IP (probe_converter.go; kuma-dp http.go,
//     tcp.go).
//   - NamedPortNotDeclared: the probe names a port its own container does not declare; Kuma's
//     namedPortResolver leaves it unresolved and the converter writes port 0 into the path
//     ("/0/...", "/tcp/0"), which kuma-dp cannot probe.
//
// What Kuma keeps working through the rewrite is not a hazard: an HTTPS scheme (sent as
// X-Kuma-Probes-Scheme; kuma-dp calls the app over TLS without verifying it, as the kubelet does),
// httpHeaders (kuma-dp forwards all but X-Kuma-Probes-*; a "Host" header travels as
// X-Kuma-Probes-Host), grpc.service (X-Kuma-Probes-GRPC-Service) and timeoutSeconds
// (X-Kuma-Probes-Timeout). Exec probes are listed without a hazard.
func Originals(spec *corev1.PodSpec, annotations map[string]string, proxyPort int32) (analysed []probes.Probe, rewritten int) {
	if spec == nil {
		return nil, 0
	}
	vpOn, vpPort := virtualProbesOn(annotations)
	_, gateway := annotations[GatewayAnnotation]
	portInUse := ""
	for _, ac := range probes.AppContainers(spec, ProxyContainerName) {
		for _, cp := range ac.C.Ports {
			if proxyPort > 0 && cp.ContainerPort == proxyPort && portInUse == "" {
				portInUse = ac.C.Name
			}
		}
	}
	for _, ac := range probes.AppContainers(spec, ProxyContainerName) {
		for _, kind := range probes.Kinds {
			pr := probes.ProbeOf(ac.C, kind)
			if pr == nil {
				continue
			}
			p, resolved, ok := probes.Describe(ac.C, ac.Init, kind, pr)
			if !ok {
				continue
			}
			d, isProxy := decodeProxy(pr, proxyPort)
			if !isProxy && vpOn {
				d, isProxy = decodeVirtual(pr, vpPort)
			}
			if isProxy {
				p = probes.Probe{Container: p.Container, Init: p.Init, Kind: p.Kind, Handler: d.handler, Port: d.port, Original: d.original}
				rewritten++
				analysed = append(analysed, p)
				continue
			}
			if p.Handler != v1alpha1.HandlerExec {
				setHazard(&p, pr, resolved, proxyPort, gateway, portInUse, spec)
			}
			analysed = append(analysed, p)
		}
	}
	return analysed, rewritten
}

func setHazard(p *probes.Probe, pr *corev1.Probe, resolved bool, proxyPort int32, gateway bool, portInUse string, spec *corev1.PodSpec) {
	what := fmt.Sprintf("The %s probe of container %q", probes.KindWord(p.Kind), p.Container)
	host := ""
	switch {
	case pr.HTTPGet != nil:
		host = pr.HTTPGet.Host
	case pr.TCPSocket != nil:
		host = pr.TCPSocket.Host
	}
	switch {
	case gateway:
		p.Hazard = v1alpha1.StatusReasonGatewayPod
		p.HazardMessage = fmt.Sprintf("%s belongs to a Kuma gateway pod (%s); Kuma never redirects a gateway's probes and refuses a gateway pod that sets %s above 0.",
			what, GatewayAnnotation, ProbeProxyPortAnnotation)
	case proxyPort > 0 && resolved && p.Port == proxyPort:
		p.Hazard = v1alpha1.StatusReasonProbePortIsProxyPort
		p.HazardMessage = fmt.Sprintf("%s targets port %d, the application probe proxy's port; Kuma's injector refuses a pod with such a probe.", what, proxyPort)
	case portInUse != "":
		p.Hazard = v1alpha1.StatusReasonProbeProxyPortInUse
		p.HazardMessage = fmt.Sprintf("%s would be redirected to kuma-dp on port %d, but container %q declares that port, so the app and kuma-dp's probe listener would both need it.",
			what, proxyPort, portInUse)
	case host != "":
		p.Hazard = v1alpha1.StatusReasonProbeHostDropped
		p.HazardMessage = fmt.Sprintf("%s is sent to host %q; Kuma's rewrite drops the host and kuma-dp probes the pod's own IP, so the probe would no longer check %s.",
			what, host, host)
	case !resolved:
		elsewhere := ""
		if owner := probes.PortOwner(spec, p.PortName, p.Container, ProxyContainerName); owner != "" {
			elsewhere = fmt.Sprintf(" (only container %q does)", owner)
		}
		p.Hazard = v1alpha1.StatusReasonNamedPortNotDeclared
		p.HazardMessage = fmt.Sprintf("%s uses port name %q, which that container does not declare%s, so Kuma would rewrite it to port 0 and kuma-dp could not probe it.",
			what, p.PortName, elsewhere)
	}
}

// VerifyPod inspects a live pod (or an injected pod template) against Kuma's rewrite.
// SidecarInjected is true when kuma-sidecar is a container or an init container (a native
// sidecar). Probes has an entry for every HTTP, TCP and gRPC probe of every container and init
// container except kuma-sidecar (exec probes, which Kuma never rewrites, are left out), with
// Target the probe as it is now and, for a rewritten probe, Original the probe read back from it.
//
// The port comes from the pod's annotations, which Kuma's injector always writes: a probe is
// Rewritten when it is in the application probe proxy's form on kuma.io/application-probe-proxy-port
// (9001 when the annotation is absent). When that annotation is "0" and kuma.io/virtual-probes is
// on, an HTTP probe is Rewritten when it is a virtual probe on kuma.io/virtual-probes-port (9000
// when absent). Otherwise Reason says why not, the first that applies: NoSidecar;
// InitContainerBeforeSidecar (an init container that does not follow kuma-sidecar in
// initContainers, which Kuma skips); InvalidProbeProxyPort (the annotation is not a port);
// ProbeProxyDisabled (port "0" and virtual probes off); VirtualProbesHTTPOnly (virtual probes and
// a TCP or gRPC probe); ProbeNotRewritten.
func VerifyPod(pod *corev1.Pod) probes.PodVerification {
	out := probes.PodVerification{Probes: map[probes.Key]probes.ProbeVerification{}}
	if pod == nil {
		return out
	}
	spec := &pod.Spec
	out.SidecarInjected = findProxy(spec) != nil
	pp := ReadProbeProxy(pod.Annotations)
	proxyPort := DefaultProbeProxyPort
	switch pp.State {
	case ProbeProxyEnabled:
		proxyPort = pp.Port
	case ProbeProxyDisabled, ProbeProxyInvalid:
		proxyPort = 0
	}
	vpOn, vpPort := virtualProbesOn(pod.Annotations)
	eligibleInit := initAfterProxy(spec)

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
			v := probes.ProbeVerification{Target: p.Original}
			var (
				d       decoded
				matched bool
			)
			switch {
			case proxyPort > 0:
				d, matched = decodeProxy(pr, proxyPort)
			case vpOn:
				d, matched = decodeVirtual(pr, vpPort)
			}
			switch {
			case !out.SidecarInjected:
				v.Reason = v1alpha1.StatusReasonNoSidecar
			case ac.Init && !eligibleInit[ac.C.Name]:
				v.Reason = v1alpha1.StatusReasonInitContainerBeforeSidecar
			case matched:
				v.Rewritten = true
				v.Original = d.original
			case pp.State == ProbeProxyInvalid:
				v.Reason = v1alpha1.StatusReasonInvalidProbeProxyPort
			case proxyPort == 0 && !vpOn:
				v.Reason = v1alpha1.StatusReasonProbeProxyDisabled
			case proxyPort == 0 && p.Handler != v1alpha1.HandlerHTTP:
				v.Reason = v1alpha1.StatusReasonVirtualProbesHTTPOnly
			default:
				v.Reason = v1alpha1.StatusReasonProbeNotRewritten
			}
			out.Probes[p.Key()] = v
		}
	}
	return out
}

// ProxyPortOf returns the probe proxy port a live or injected pod's annotations name (the
// injector always writes kuma.io/application-probe-proxy-port): the annotation's port, 0 when it
// is "0" or invalid, and DefaultProbeProxyPort when it is absent.
func ProxyPortOf(annotations map[string]string) int32 {
	pp := ReadProbeProxy(annotations)
	switch pp.State {
	case ProbeProxyEnabled:
		return pp.Port
	case ProbeProxyUnset:
		return DefaultProbeProxyPort
	}
	return 0
}
