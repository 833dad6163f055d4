package meshdouble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// This file is a TEST DOUBLE of Kuma's sidecar injector (kuma-cp's
// "/inject-sidecar" mutating webhook) at tag v2.14.3, reimplemented from
// reading kumahq/kuma at that tag, not copied:
//
//   - pkg/plugins/runtime/k8s/webhooks/injector/precheck.go (needToInject,
//     the Mesh must exist), injector.go (injectKuma, NewAnnotations on the
//     legacy path without a transparent-proxy ConfigMap, which is the Helm
//     chart's default: transparentProxy.configMap.enabled false), probes.go
//     (overrideHTTPProbes: legacy virtual probes);
//   - pkg/plugins/runtime/k8s/probes/pod_probe_overrider.go
//     (SetupAppProbeProxies, SetApplicationProbeProxyPortAnnotation),
//     probe_converter.go (ProxiedApplicationProbe.ToVirtual), headers.go,
//     probe.go (SetVirtualProbesEnabledAnnotation, KumaProbe.ToVirtual);
//   - pkg/plugins/runtime/k8s/containers/factory.go (the kuma-sidecar
//     container, KUMA_APPLICATION_PROBE_PROXY_PORT, the sidecar's own
//     probes on the Envoy admin port);
//   - pkg/transparentproxy/kubernetes/kubernetes.go
//     (excludeApplicationProbeProxyPort: kuma-init's --exclude-inbound-ports).
//
// The facts are summarised in shared/reference/mesh-probes.md §4.1–4.2 and
// §7. The double covers only what this project depends on: which pods are
// injected, the probe-related annotations, the kuma-sidecar container with
// its probe-related env and own probes, a kuma-init container carrying the
// inbound port exclusions, and the probe rewrite. It does not cover the
// control-plane CA, builtin DNS, eBPF, CNI mode, the transparent-proxy
// ConfigMap path, container patches, the sidecar's resources beyond fixed
// values, SPIRE, zone proxies, or the kuma-dp process that would serve the
// rewritten probes. Nothing it injects runs. TestKumaDoubleMatchesGoldenFiles
// proves it against Kuma's own injector golden files
// (shared/fixtures/kuma-inject). It imports nothing from the operator.

// Kuma names (kumahq/kuma v2.14.3 pkg/plugins/runtime/k8s/metadata and util).
const (
	// KumaWebhookPath is the path kuma-cp serves its injector at (Helm chart
	// cp-webhooks-and-secrets.yaml, webhooks namespace-kuma-injector.kuma.io
	// and pods-kuma-injector.kuma.io).
	KumaWebhookPath = "/inject-sidecar"
	// KumaSidecarName is the injected data plane container.
	KumaSidecarName = "kuma-sidecar"
	// KumaInitName is the init container that installs the transparent proxy.
	KumaInitName = "kuma-init"

	KumaSidecarInjectionLabel         = "kuma.io/sidecar-injection"
	KumaMeshLabel                     = "kuma.io/mesh"
	KumaGatewayAnnotation             = "kuma.io/gateway"
	KumaProbeProxyPortAnnotation      = "kuma.io/application-probe-proxy-port"
	KumaVirtualProbesAnnotation       = "kuma.io/virtual-probes"
	KumaVirtualProbesPortAnnotation   = "kuma.io/virtual-probes-port"
	KumaSidecarInjectedAnnotation     = "kuma.io/sidecar-injected"
	KumaEnvoyAdminPortAnnotation      = "kuma.io/envoy-admin-port"
	KumaInitFirstAnnotation           = "kuma.io/init-first"
	KumaExcludeInboundPortsAnnotation = "traffic.kuma.io/exclude-inbound-ports"
	// KumaProbeProxyPortEnv is the kuma-sidecar variable that tells kuma-dp
	// where to serve the application probe proxy.
	KumaProbeProxyPortEnv = "KUMA_APPLICATION_PROBE_PROXY_PORT"

	// Headers of a rewritten probe (probes/headers.go).
	KumaProbeHeaderTimeout     = "X-Kuma-Probes-Timeout"
	KumaProbeHeaderHost        = "X-Kuma-Probes-Host"
	KumaProbeHeaderScheme      = "X-Kuma-Probes-Scheme"
	KumaProbeHeaderGRPCService = "X-Kuma-Probes-GRPC-Service"

	// Images used when KumaOptions leaves them empty.
	DefaultKumaSidecarImage = "docker.io/kumahq/kuma-dp:2.14.3"
	DefaultKumaInitImage    = "docker.io/kumahq/kuma-init:2.14.3"
)

// KumaProbeTiming is one of the sidecar's own probes in kuma-cp's
// runtime.kubernetes.injector.sidecarContainer config.
type KumaProbeTiming struct {
	InitialDelaySeconds, TimeoutSeconds, PeriodSeconds, SuccessThreshold, FailureThreshold int32
}

// KumaOptions is the simulated kuma-cp injector configuration
// (runtime.kubernetes.injector in kuma-cp.defaults.yaml). The zero value is
// NOT Kuma's default: ProbeProxyPort 0 disables the probe proxy, as in
// Kuma. Start from DefaultKumaOptions.
type KumaOptions struct {
	// ProbeProxyPort is applicationProbeProxyPort (Kuma's default 9001); 0
	// disables the application probe proxy.
	ProbeProxyPort uint32
	// VirtualProbesEnabled is virtualProbesEnabled (deprecated; false by
	// default in v2.14.3).
	VirtualProbesEnabled bool
	// VirtualProbesPort is virtualProbesPort (default 9000).
	VirtualProbesPort uint32
	// NativeSidecar models Kubernetes native sidecars (kuma-cp's
	// experimental sidecarContainers): kuma-sidecar becomes an init container
	// with restartPolicy Always placed after kuma-init, and init containers
	// after it with restartPolicy Always get their probes rewritten too.
	NativeSidecar bool
	// SidecarImage and InitImage; empty means the Default* images.
	SidecarImage, InitImage string
	// AdminPort is the Envoy admin port the sidecar's own probes use (default 9901).
	AdminPort uint32
	// UID of the sidecar (sidecarContainer.uid, default 5678).
	UID int64
	// RedirectPortInbound / RedirectPortOutbound (15006 / 15001).
	RedirectPortInbound, RedirectPortOutbound uint32
	// ControlPlaneURL is given to the sidecar as KUMA_CONTROL_PLANE_URL.
	ControlPlaneURL string
	// The sidecar's own probes (sidecarContainer.readinessProbe,
	// livenessProbe, startupProbe; the startup probe only with NativeSidecar).
	SidecarReadiness, SidecarLiveness, SidecarStartup KumaProbeTiming
	// ExceptionLabels are exceptions.labels: a pod with one of these labels
	// (value "*" matches any) is not injected.
	ExceptionLabels map[string]string
}

// DefaultKumaOptions returns kuma-cp v2.14.3's defaults
// (pkg/config/app/kuma-cp/kuma-cp.defaults.yaml).
func DefaultKumaOptions() KumaOptions {
	return KumaOptions{
		ProbeProxyPort:       9001,
		VirtualProbesEnabled: false,
		VirtualProbesPort:    9000,
		AdminPort:            9901,
		UID:                  5678,
		RedirectPortInbound:  15006,
		RedirectPortOutbound: 15001,
		ControlPlaneURL:      "https://kuma-control-plane.kuma-system:5678",
		SidecarReadiness:     KumaProbeTiming{1, 3, 5, 1, 12},
		SidecarLiveness:      KumaProbeTiming{60, 3, 5, 1, 12},
		SidecarStartup:       KumaProbeTiming{1, 3, 5, 1, 12},
		ExceptionLabels:      map[string]string{"openshift.io/deployer-pod-for.name": "*"},
	}
}

func (o KumaOptions) withDefaults() KumaOptions {
	if o.SidecarImage == "" {
		o.SidecarImage = DefaultKumaSidecarImage
	}
	if o.InitImage == "" {
		o.InitImage = DefaultKumaInitImage
	}
	if o.AdminPort == 0 {
		o.AdminPort = 9901
	}
	if o.UID == 0 {
		o.UID = 5678
	}
	if o.RedirectPortInbound == 0 {
		o.RedirectPortInbound = 15006
	}
	if o.RedirectPortOutbound == 0 {
		o.RedirectPortOutbound = 15001
	}
	return o
}

// kumaEnabled parses Kuma's boolean annotation values (metadata.Annotations
// GetEnabled): enabled/disabled, true/false, yes/no; anything else is an
// error. ok reports whether key is present.
func kumaEnabled(m map[string]string, key string) (enabled, ok bool, err error) {
	v, ok := m[key]
	if !ok {
		return false, false, nil
	}
	switch v {
	case "enabled", "true", "yes":
		return true, true, nil
	case "disabled", "false", "no":
		return false, true, nil
	}
	return false, true, fmt.Errorf("annotation %q has wrong value %q", key, v)
}

// kumaUint32 parses a uint32 annotation (GetUint32: strconv.ParseUint base 10).
func kumaUint32(m map[string]string, key string) (v uint32, ok bool, err error) {
	s, ok := m[key]
	if !ok {
		return 0, false, nil
	}
	u, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, true, fmt.Errorf("failed to parse annotation %q: %w", key, err)
	}
	return uint32(u), true, nil
}

// KumaInjectionWanted is Kuma's needToInject (precheck.go): no injection for
// a pod matching an exception label or already carrying kuma-sidecar; else
// the pod LABEL kuma.io/sidecar-injection decides if present, else the
// namespace label. (In v2.14.3 the pod annotation of that name is no longer
// read; the webhook's objectSelector matches the label too.) A value that is
// not a Kuma boolean is an error.
func KumaInjectionWanted(nsLabels map[string]string, pod *corev1.Pod, o KumaOptions) (bool, error) {
	for k, v := range o.ExceptionLabels {
		if pv, ok := pod.Labels[k]; ok && (v == "*" || v == pv) {
			return false, nil
		}
	}
	if findKumaSidecar(&pod.Spec) != nil {
		return false, nil
	}
	if enabled, ok, err := kumaEnabled(pod.Labels, KumaSidecarInjectionLabel); err != nil || ok {
		return enabled, err
	}
	enabled, _, err := kumaEnabled(nsLabels, KumaSidecarInjectionLabel)
	return enabled, err
}

// KumaMeshOf is Kuma's MeshOfByLabelOrAnnotation: the kuma.io/mesh pod
// label, pod annotation, namespace label, else "default". (Kuma also reads a
// namespace annotation, which the double's NamespaceLabels does not give.)
func KumaMeshOf(nsLabels map[string]string, pod *corev1.Pod) string {
	for _, m := range []map[string]string{pod.Labels, pod.Annotations, nsLabels} {
		if v := m[KumaMeshLabel]; v != "" {
			return v
		}
	}
	return "default"
}

// findKumaSidecar returns kuma-sidecar from containers or initContainers.
func findKumaSidecar(spec *corev1.PodSpec) *corev1.Container {
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range list {
			if list[i].Name == KumaSidecarName {
				return &list[i]
			}
		}
	}
	return nil
}

// kumaProbeAnnotations computes the three probe annotations the injector
// writes, from the pod's own annotations (injector.go NewAnnotations on the
// legacy path):
//
//   - kuma.io/virtual-probes (probe.go SetVirtualProbesEnabledAnnotation):
//     gateway pods "disabled" (an explicit enabled is an error); a pod that
//     sets the probe-proxy port annotation to 0 falls back to "enabled";
//     else the pod's own value; else the config;
//   - kuma.io/virtual-probes-port: the pod's value, else the config;
//   - kuma.io/application-probe-proxy-port
//     (SetApplicationProbeProxyPortAnnotation): gateway pods "0" (an
//     explicit port > 0 is an error); else the pod's value, else the config.
//
// The transparent-proxy ConfigMap path uses GetApplicationProbeProxyPort,
// where an explicit kuma.io/virtual-probes: disabled also turns the proxy
// off; that path is not the Helm default and is not modelled.
func kumaProbeAnnotations(pod map[string]string, o KumaOptions) (map[string]string, error) {
	out := map[string]string{}
	_, gateway := pod[KumaGatewayAnnotation]
	gwEnabled, _, err := kumaEnabled(pod, KumaGatewayAnnotation)
	if err != nil {
		return nil, err
	}
	vpEnabled, vpSet, err := kumaEnabled(pod, KumaVirtualProbesAnnotation)
	if err != nil {
		return nil, err
	}
	proxyPort, proxySet, err := kumaUint32(pod, KumaProbeProxyPortAnnotation)
	if err != nil {
		return nil, err
	}
	str := func(b bool) string {
		if b {
			return "enabled"
		}
		return "disabled"
	}
	switch {
	case gwEnabled && vpEnabled:
		return nil, errors.New("virtual probes can't be enabled in gateway mode")
	case gwEnabled:
		out[KumaVirtualProbesAnnotation] = "disabled"
	case proxySet && proxyPort == 0:
		out[KumaVirtualProbesAnnotation] = "enabled"
	case vpSet:
		out[KumaVirtualProbesAnnotation] = str(vpEnabled)
	default:
		out[KumaVirtualProbesAnnotation] = str(o.VirtualProbesEnabled)
	}

	vpPort, vpPortSet, err := kumaUint32(pod, KumaVirtualProbesPortAnnotation)
	if err != nil {
		return nil, err
	}
	if !vpPortSet {
		vpPort = o.VirtualProbesPort
	}
	out[KumaVirtualProbesPortAnnotation] = strconv.FormatUint(uint64(vpPort), 10)

	port := o.ProbeProxyPort
	if proxySet {
		port = proxyPort
	}
	if gateway {
		if proxySet && proxyPort > 0 {
			return nil, errors.New("application probe proxies can't be enabled in gateway mode")
		}
		port = 0
	}
	out[KumaProbeProxyPortAnnotation] = strconv.FormatUint(uint64(port), 10)
	return out, nil
}

// KumaInject mutates pod as Kuma's injector does for a pod it injects into
// mesh (see the file comment for what is covered). It does not decide
// whether the pod is injected (KumaInjectionWanted). Invalid annotations and
// a probe on the probe-proxy (or virtual-probes) port are errors, as in
// Kuma, which then denies the pod; pod may be partly mutated then.
func KumaInject(pod *corev1.Pod, mesh string, o KumaOptions) error {
	if pod == nil {
		return errors.New("meshdouble: nil pod")
	}
	o = o.withDefaults()
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if _, ok := pod.Annotations["kubectl.kubernetes.io/default-container"]; !ok && len(pod.Spec.Containers) == 1 {
		pod.Annotations["kubectl.kubernetes.io/default-container"] = pod.Spec.Containers[0].Name
	}
	// The sidecar is built from the pod's annotations before the injector's
	// own are merged (injectKuma: NewSidecarContainer, then NewAnnotations).
	probeAnnotations, err := kumaProbeAnnotations(pod.Annotations, o)
	if err != nil {
		return fmt.Errorf("meshdouble: kuma injection: %w", err)
	}
	adminPort, adminSet, err := kumaUint32(pod.Annotations, KumaEnvoyAdminPortAnnotation)
	if err != nil {
		return fmt.Errorf("meshdouble: kuma injection: %w", err)
	}
	if !adminSet || adminPort == 0 {
		adminPort = o.AdminPort
	}
	sidecar := kumaSidecarContainer(mesh, probeAnnotations[KumaProbeProxyPortAnnotation], adminPort, o)

	tenMega := resource.NewScaledQuantity(10, resource.Mega)
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		corev1.Volume{Name: "kuma-init-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: tenMega}}},
		corev1.Volume{Name: "kuma-sidecar-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: tenMega}}},
	)

	annotations := map[string]string{
		KumaSidecarInjectedAnnotation:                 "true",
		"kuma.io/sidecar-uid":                         strconv.FormatInt(o.UID, 10),
		"kuma.io/transparent-proxying":                "enabled",
		"kuma.io/transparent-proxying-inbound-port":   strconv.FormatUint(uint64(o.RedirectPortInbound), 10),
		"kuma.io/transparent-proxying-outbound-port":  strconv.FormatUint(uint64(o.RedirectPortOutbound), 10),
		"kuma.io/transparent-proxying-ip-family-mode": "dualstack",
		KumaEnvoyAdminPortAnnotation:                  strconv.FormatUint(uint64(adminPort), 10),
	}
	if v, ok := pod.Annotations["kuma.io/transparent-proxying-ip-family-mode"]; ok && v != "" {
		annotations["kuma.io/transparent-proxying-ip-family-mode"] = v
	}
	maps.Copy(annotations, probeAnnotations)
	maps.Copy(pod.Annotations, annotations)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[KumaMeshLabel] = mesh

	initC := kumaInitContainer(pod.Annotations, o)
	initFirst, _, err := kumaEnabled(pod.Annotations, KumaInitFirstAnnotation)
	if err != nil {
		return fmt.Errorf("meshdouble: kuma injection: %w", err)
	}
	var prepend, appendInit []corev1.Container
	if initFirst || o.NativeSidecar {
		prepend = append(prepend, initC)
	} else {
		appendInit = append(appendInit, initC)
	}
	if o.NativeSidecar {
		always := corev1.ContainerRestartPolicyAlways
		sidecar.RestartPolicy = &always
		sidecar.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"killall", "-USR2", "kuma-dp"}},
		}}
		sidecar.StartupProbe = kumaOwnProbe(adminPort, o.SidecarStartup, 1)
		prepend = append(prepend, sidecar)
	} else {
		pod.Spec.Containers = append([]corev1.Container{sidecar}, pod.Spec.Containers...)
	}
	pod.Spec.InitContainers = append(append(prepend, pod.Spec.InitContainers...), appendInit...)

	// Kuma reads the port back from the merged annotations.
	port, _, _ := kumaUint32(pod.Annotations, KumaProbeProxyPortAnnotation)
	if port == 0 {
		vp, _, _ := kumaEnabled(pod.Annotations, KumaVirtualProbesAnnotation)
		if !vp {
			return nil
		}
		vpPort, _, _ := kumaUint32(pod.Annotations, KumaVirtualProbesPortAnnotation)
		return KumaVirtualProbes(&pod.Spec, vpPort)
	}
	return KumaRewriteProbes(&pod.Spec, port)
}

// kumaProbedContainers lists, as Kuma's SetupAppProbeProxies and
// overrideHTTPProbes do, the containers whose probes are rewritten: init
// containers after kuma-sidecar with restartPolicy Always, then every
// container except kuma-sidecar. Pointers into spec.
func kumaProbedContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	after := false
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if c.Name == KumaSidecarName {
			after = true
			continue
		}
		if after && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			out = append(out, c)
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name != KumaSidecarName {
			out = append(out, &spec.Containers[i])
		}
	}
	return out
}

// kumaResolveNamedPort replaces a named httpGet/tcpSocket port by the number
// of the container port of that name, when there is one (namedPortResolver).
func kumaResolveNamedPort(h *corev1.ProbeHandler, ports []corev1.ContainerPort) {
	var port *intstr.IntOrString
	switch {
	case h.HTTPGet != nil:
		port = &h.HTTPGet.Port
	case h.TCPSocket != nil:
		port = &h.TCPSocket.Port
	default:
		return
	}
	if port.IntValue() != 0 {
		return
	}
	for _, cp := range ports {
		if cp.Name != "" && cp.Name == port.String() {
			*port = intstr.FromInt32(cp.ContainerPort)
			return
		}
	}
}

// KumaRewriteProbes is the application probe proxy rewrite
// (SetupAppProbeProxies with ProxiedApplicationProbe.ToVirtual), in place:
// for the liveness, readiness and startup probes of the containers Kuma
// rewrites, httpGet port P path X becomes httpGet proxyPort path /P/X (a
// Host header renamed X-Kuma-Probes-Host, other headers kept, then
// X-Kuma-Probes-Scheme when the scheme is not HTTP); tcpSocket P becomes
// /tcp/P; grpc P becomes /grpc/P (X-Kuma-Probes-GRPC-Service when a service
// is set, after the timeout header); every one gets X-Kuma-Probes-Timeout
// when timeoutSeconds > 1. exec probes are untouched. A probe on proxyPort
// itself is an error.
func KumaRewriteProbes(spec *corev1.PodSpec, proxyPort uint32) error {
	for _, c := range kumaProbedContainers(spec) {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil || (p.HTTPGet == nil && p.TCPSocket == nil && p.GRPC == nil) {
				continue
			}
			kumaResolveNamedPort(&p.ProbeHandler, c.Ports)
			h, err := kumaProxiedProbe(p, proxyPort)
			if err != nil {
				return err
			}
			p.ProbeHandler = corev1.ProbeHandler{HTTPGet: h}
		}
	}
	return nil
}

func kumaReservedPortError(port uint32) error {
	return fmt.Errorf("meshdouble: kuma injection: cannot override Pod's probes: port for probe cannot be set to %d, "+
		"it is reserved for the dataplane that serves probes without mTLS", port)
}

func kumaProxiedProbe(p *corev1.Probe, proxyPort uint32) (*corev1.HTTPGetAction, error) {
	var (
		path    string
		headers []corev1.HTTPHeader
		appPort uint32
	)
	timeout := func() {
		if p.TimeoutSeconds > 1 {
			headers = append(headers, corev1.HTTPHeader{Name: KumaProbeHeaderTimeout, Value: strconv.Itoa(int(p.TimeoutSeconds))})
		}
	}
	switch {
	case p.HTTPGet != nil:
		appPort = uint32(p.HTTPGet.Port.IntValue())
		sub := p.HTTPGet.Path
		if !strings.HasPrefix(sub, "/") {
			sub = "/" + sub
		}
		path = fmt.Sprintf("/%d%s", appPort, sub)
		for _, h := range p.HTTPGet.HTTPHeaders {
			if h.Name == "Host" {
				h.Name = KumaProbeHeaderHost
			}
			headers = append(headers, h)
		}
		if p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != corev1.URISchemeHTTP {
			headers = append(headers, corev1.HTTPHeader{Name: KumaProbeHeaderScheme, Value: string(p.HTTPGet.Scheme)})
		}
		timeout()
	case p.TCPSocket != nil:
		appPort = uint32(p.TCPSocket.Port.IntValue())
		path = fmt.Sprintf("/tcp/%d", appPort)
		timeout()
	case p.GRPC != nil:
		appPort = uint32(p.GRPC.Port)
		path = fmt.Sprintf("/grpc/%d", appPort)
		timeout()
		if p.GRPC.Service != nil && *p.GRPC.Service != "" {
			headers = append(headers, corev1.HTTPHeader{Name: KumaProbeHeaderGRPCService, Value: *p.GRPC.Service})
		}
	}
	if appPort == proxyPort {
		return nil, kumaReservedPortError(proxyPort)
	}
	return &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(proxyPort)), Path: path, HTTPHeaders: headers}, nil
}

// KumaVirtualProbes is the legacy virtual probes rewrite
// (webhooks/injector/probes.go overrideHTTPProbes, KumaProbe.ToVirtual), in
// place: only httpGet probes; the port becomes virtualPort and the path
// /<port><path>; scheme and headers stay. A probe already on virtualPort is
// an error.
func KumaVirtualProbes(spec *corev1.PodSpec, virtualPort uint32) error {
	for _, c := range kumaProbedContainers(spec) {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			kumaResolveNamedPort(&p.ProbeHandler, c.Ports)
			port := uint32(p.HTTPGet.Port.IntValue())
			if port == virtualPort {
				return kumaReservedPortError(virtualPort)
			}
			sub := p.HTTPGet.Path
			if !strings.HasPrefix(sub, "/") {
				sub = "/" + sub
			}
			p.HTTPGet.Port = intstr.FromInt32(int32(virtualPort))
			p.HTTPGet.Path = fmt.Sprintf("/%d%s", port, sub)
		}
	}
	return nil
}

func kumaOwnProbe(port uint32, t KumaProbeTiming, success int32) *corev1.Probe {
	if success == 0 {
		success = t.SuccessThreshold
	}
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/ready", Port: intstr.FromInt32(int32(port)),
		}},
		InitialDelaySeconds: t.InitialDelaySeconds,
		TimeoutSeconds:      t.TimeoutSeconds,
		PeriodSeconds:       t.PeriodSeconds,
		SuccessThreshold:    success,
		FailureThreshold:    t.FailureThreshold,
	}
}

// kumaSidecarContainer is a reduced kuma-sidecar (factory.go NewContainer):
// the args, the env that matters here (KUMA_APPLICATION_PROBE_PROXY_PORT,
// mesh, control plane, pod identity), the own readiness and liveness probes
// on the admin port and the security context; no CA, resources or most env.
func kumaSidecarContainer(mesh, probeProxyPort string, adminPort uint32, o KumaOptions) corev1.Container {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
		}}
	}
	env := []corev1.EnvVar{
		field("INSTANCE_IP", "status.podIP"),
		{Name: KumaProbeProxyPortEnv, Value: probeProxyPort},
		{Name: "KUMA_CONTROL_PLANE_URL", Value: o.ControlPlaneURL},
		{Name: "KUMA_DATAPLANE_MESH", Value: mesh},
		{Name: "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", Value: "/var/run/secrets/kubernetes.io/serviceaccount/token"},
		field("POD_NAME", "metadata.name"),
		field("POD_NAMESPACE", "metadata.namespace"),
	}
	uid, gid := o.UID, o.UID
	return corev1.Container{
		Name:            KumaSidecarName,
		Image:           o.SidecarImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            []string{"run", "--log-level=info", "--concurrency=2"},
		Env:             env,
		LivenessProbe:   kumaOwnProbe(adminPort, o.SidecarLiveness, 1),
		ReadinessProbe:  kumaOwnProbe(adminPort, o.SidecarReadiness, 0),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &uid, RunAsGroup: &gid,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   ptrTo(true),
			AllowPrivilegeEscalation: ptrTo(false),
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "kuma-sidecar-tmp", MountPath: "/tmp"}},
	}
}

func ptrTo[T any](v T) *T { return &v }

// kumaInitContainer is a reduced kuma-init: what matters here is
// --exclude-inbound-ports, the inbound ports left out of capture: the
// traffic.kuma.io/exclude-inbound-ports annotation plus the probe proxy port
// when it is not 0 (excludeApplicationProbeProxyPort).
func kumaInitContainer(annotations map[string]string, o KumaOptions) corev1.Container {
	var args []string
	if ex := KumaExcludedInboundPorts(annotations); ex != "" {
		args = append(args, "--exclude-inbound-ports="+ex)
	}
	args = append(args, "--verbose")
	root := int64(0)
	return corev1.Container{
		Name:            KumaInitName,
		Image:           o.InitImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"/usr/bin/kumactl", "install", "transparent-proxy"},
		Args:            args,
		Env:             []corev1.EnvVar{{Name: "XTABLES_LOCKFILE", Value: "/tmp/xtables.lock"}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &root, RunAsGroup: &root,
			Capabilities: &corev1.Capabilities{
				Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}, Drop: []corev1.Capability{"ALL"},
			},
			ReadOnlyRootFilesystem: ptrTo(true),
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "kuma-init-tmp", MountPath: "/tmp"}},
	}
}

// KumaExcludedInboundPorts is the comma-separated list of inbound ports
// Kuma leaves out of capture for a pod with these (already injected)
// annotations (transparentproxy/kubernetes excludeApplicationProbeProxyPort).
func KumaExcludedInboundPorts(annotations map[string]string) string {
	ex := annotations[KumaExcludeInboundPortsAnnotation]
	p := annotations[KumaProbeProxyPortAnnotation]
	switch {
	case p == "" || p == "0":
		return ex
	case ex == "":
		return p
	}
	return ex + "," + p
}

// KumaWebhook serves the double of kuma-cp's injector at KumaWebhookPath:
// Pods at CREATE that KumaInjectionWanted selects are mutated by KumaInject
// and answered with a JSON Patch; everything else is admitted unchanged.
// As in Kuma's preCheck, the pod's Mesh must exist (MeshExists), otherwise
// the pod is denied; an injection error denies the pod too.
type KumaWebhook struct {
	// Options is the simulated injector configuration (see DefaultKumaOptions).
	Options KumaOptions
	// NamespaceLabels returns a namespace's labels; nil means none. An error
	// denies the pod.
	NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error)
	// MeshExists reports whether the cluster-scoped Mesh of that name
	// exists; nil means every Mesh exists.
	MeshExists func(ctx context.Context, mesh string) (bool, error)

	mu  sync.RWMutex
	set *KumaOptions
}

// SetOptions replaces Options while the webhook serves (as a kuma-cp
// restart with a new config would): pods admitted afterwards use o.
func (w *KumaWebhook) SetOptions(o KumaOptions) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.set = &o
}

func (w *KumaWebhook) options() KumaOptions {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.set != nil {
		return *w.set
	}
	return w.Options
}

// ServeHTTP implements http.Handler, as Webhook.ServeHTTP does on KumaWebhookPath.
func (w *KumaWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	serveAdmission(rw, r, KumaWebhookPath, w.admit)
}

func kumaDeny(code int32, format string, args ...any) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code,
		Message: "meshdouble kuma injector: " + fmt.Sprintf(format, args...),
	}}
}

func (w *KumaWebhook) admit(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource != podsResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return kumaDeny(http.StatusBadRequest, "decoding pod: %v", err)
	}
	namespace := req.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}
	var nsLabels map[string]string
	if w.NamespaceLabels != nil {
		l, err := w.NamespaceLabels(ctx, namespace)
		if err != nil {
			return kumaDeny(http.StatusInternalServerError, "reading labels of namespace %q: %v", namespace, err)
		}
		nsLabels = l
	}
	opts := w.options()
	inject, err := KumaInjectionWanted(nsLabels, &pod, opts)
	if err != nil {
		return kumaDeny(http.StatusBadRequest, "%v", err)
	}
	if !inject {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	mesh := KumaMeshOf(nsLabels, &pod)
	if w.MeshExists != nil {
		ok, err := w.MeshExists(ctx, mesh)
		if err != nil {
			return kumaDeny(http.StatusInternalServerError, "reading Mesh %q: %v", mesh, err)
		}
		if !ok {
			return kumaDeny(http.StatusNotFound, "meshes.kuma.io %q not found", mesh)
		}
	}
	mutated := pod.DeepCopy()
	if err := KumaInject(mutated, mesh, opts); err != nil {
		return kumaDeny(http.StatusBadRequest, "%v", err)
	}
	mutatedJSON, err := json.Marshal(mutated)
	if err != nil {
		return kumaDeny(http.StatusInternalServerError, "encoding pod: %v", err)
	}
	ops, err := jsonpatch.CreatePatch(req.Object.Raw, mutatedJSON)
	if err != nil {
		return kumaDeny(http.StatusInternalServerError, "creating patch: %v", err)
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return kumaDeny(http.StatusInternalServerError, "encoding patch: %v", err)
	}
	patchType := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &patchType}
}

// kumaRedirect reports how kubelet's probe p reaches the app on a pod
// injected by Kuma: redirected through the probe proxy (port
// kuma.io/application-probe-proxy-port > 0, path /<port>/..., /tcp/<port>
// or /grpc/<port>) or through a legacy virtual probe (kuma.io/virtual-probes
// enabled, port kuma.io/virtual-probes-port, path /<port>/...), with the
// handler the proxy then runs and the application port; ok false for a
// probe kubelet sends straight to the app.
func kumaRedirect(annotations map[string]string, p *corev1.Probe) (handler string, appPort int32, ok bool) {
	h := p.HTTPGet
	if h == nil || h.Port.Type != intstr.Int {
		return "", 0, false
	}
	segs := strings.SplitN(strings.TrimPrefix(h.Path, "/"), "/", 3)
	if !strings.HasPrefix(h.Path, "/") || len(segs) == 0 {
		return "", 0, false
	}
	num := func(s string) (int32, bool) {
		n, err := strconv.ParseUint(s, 10, 16)
		return int32(n), err == nil && n > 0
	}
	if proxy, _, _ := kumaUint32(annotations, KumaProbeProxyPortAnnotation); proxy > 0 && uint32(h.Port.IntVal) == proxy {
		if (segs[0] == "tcp" || segs[0] == "grpc") && len(segs) == 2 {
			if n, ok := num(segs[1]); ok {
				if segs[0] == "tcp" {
					return HandlerTCP, n, true
				}
				return HandlerGRPC, n, true
			}
		}
		if n, ok := num(strings.SplitN(segs[0], "?", 2)[0]); ok {
			return HandlerHTTP, n, true
		}
		return "", 0, false
	}
	if vp, _, _ := kumaEnabled(annotations, KumaVirtualProbesAnnotation); vp {
		if port, _, _ := kumaUint32(annotations, KumaVirtualProbesPortAnnotation); port > 0 && uint32(h.Port.IntVal) == port {
			if n, ok := num(strings.SplitN(segs[0], "?", 2)[0]); ok {
				return HandlerHTTP, n, true
			}
		}
	}
	return "", 0, false
}

// kumaCaptured reports whether inbound traffic to port is redirected to
// Envoy in a Kuma-injected pod: not for gateway pods (no inbound
// redirection), not for the excluded ports (KumaExcludedInboundPorts).
func kumaCaptured(annotations map[string]string, port int32) bool {
	if gw, _, _ := kumaEnabled(annotations, KumaGatewayAnnotation); gw {
		return false
	}
	return !parsePorts(KumaExcludedInboundPorts(annotations))[port]
}
