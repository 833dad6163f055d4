package istio

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// Analyze lists the probes of every container and init container except
// istio-proxy: containers first in declaration order, then init containers,
// and for each container the probes.Kinds in the order Readiness, Liveness, Startup.
// Probes without a handler are skipped. Exec probes are listed with Handler
// Exec and never carry a hazard, since Istio leaves them alone.
//
// statusPort is the effective status port (see StatusPort). When a probe
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
func Analyze(spec *corev1.PodSpec, statusPort int32) []probes.Probe {
	if spec == nil {
		return nil
	}
	var out []probes.Probe
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
			setHazard(&p, pr, resolved, statusPort, spec)
			out = append(out, p)
		}
	}
	return out
}

func setHazard(p *probes.Probe, pr *corev1.Probe, resolved bool, statusPort int32, spec *corev1.PodSpec) {
	if p.Handler == v1alpha1.HandlerExec {
		return
	}
	what := fmt.Sprintf("The %s probe of container %q", probes.KindWord(p.Kind), p.Container)
	switch {
	case statusPort == 0:
		p.Hazard = v1alpha1.StatusReasonStatusPortDisabled
		p.HazardMessage = fmt.Sprintf("%s would be redirected to the sidecar's status port, but the pod sets %s to \"0\", so no status server would answer it.",
			what, StatusPortAnnotation)
	case pr.HTTPGet != nil && pr.HTTPGet.Host != "":
		p.Hazard = v1alpha1.StatusReasonHostSet
		p.HazardMessage = fmt.Sprintf("%s sets httpGet.host %q, which Istio keeps, so the kubelet would call %s:%d%s instead of the pod's sidecar.",
			what, pr.HTTPGet.Host, pr.HTTPGet.Host, statusPort, ProberPath(p.Container, p.Kind))
	case pr.TCPSocket != nil && pr.TCPSocket.Host != "":
		p.Hazard = v1alpha1.StatusReasonTCPHostIgnored
		p.HazardMessage = fmt.Sprintf("%s dials host %q; the rewritten probe asks the sidecar, which dials the pod's own IP instead, so the probe would no longer check %s.",
			what, pr.TCPSocket.Host, pr.TCPSocket.Host)
	case resolved && p.Port != 0 && (p.Port == statusPort || p.Port == DefaultStatusPort) && !alreadyRewritten(pr, p):
		p.Hazard = v1alpha1.StatusReasonPortIsStatusPort
		p.HazardMessage = fmt.Sprintf("%s targets port %d, the sidecar's status port; Istio takes it for a probe it already rewrote and keeps no original probe for the agent to run.",
			what, p.Port)
	case resolved && reservedPorts[p.Port]:
		p.Hazard = v1alpha1.StatusReasonReservedPort
		p.HazardMessage = fmt.Sprintf("%s targets port %d, which Istio's sidecar reserves, so it checks the sidecar rather than the app.", what, p.Port)
	case !resolved:
		elsewhere := ""
		if owner := probes.PortOwner(spec, p.PortName, p.Container, ProxyContainerName); owner != "" {
			elsewhere = fmt.Sprintf(" (only container %q does)", owner)
		}
		p.Hazard = v1alpha1.StatusReasonNamedPortNotDeclared
		p.HazardMessage = fmt.Sprintf("%s uses port name %q, which that container does not declare%s, so Istio would leave it out of %s and the sidecar would answer the rewritten probe with HTTP 400.",
			what, p.PortName, elsewhere, KubeAppProbersEnv)
	}
}

// alreadyRewritten reports whether pr is Istio's own rewrite of p: an httpGet at p's
// /app-health/... path, as in a template that `istioctl kube-inject` produced.
func alreadyRewritten(pr *corev1.Probe, p *probes.Probe) bool {
	return pr.HTTPGet != nil && pr.HTTPGet.Path == ProberPath(p.Container, p.Kind)
}

// reservedPorts are the ports Istio's sidecar uses besides the status port (istio.io, Application
// Requirements, "Ports used by Istio").
var reservedPorts = map[int32]bool{15000: true, 15001: true, 15004: true, 15006: true, 15008: true, 15009: true, 15021: true, 15053: true, 15090: true}

// RewrittenTarget formats where Istio's rewrite points the probe, for example
// "HTTP :15020/app-health/web/readyz": always plain HTTP on statusPort at
// ProberPath. An httpGet.host is kept by Istio and so appears in the
// target; TCP and GRPC probes become a fresh httpGet without a host. It returns
// "" for exec probes, which Istio does not rewrite.
func RewrittenTarget(p probes.Probe, statusPort int32) string {
	switch p.Handler {
	case v1alpha1.HandlerHTTP:
		return probes.DescribeHTTP(corev1.URISchemeHTTP, p.Host, strconv.Itoa(int(statusPort)), ProberPath(p.Container, p.Kind))
	case v1alpha1.HandlerTCP, v1alpha1.HandlerGRPC:
		return probes.DescribeHTTP(corev1.URISchemeHTTP, "", strconv.Itoa(int(statusPort)), ProberPath(p.Container, p.Kind))
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
func MarkStartupBeforeProxy(analysed []probes.Probe, nativeSidecar bool) {
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
			p.Container, NativeSidecarAnnotation)
	}
}
