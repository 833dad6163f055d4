package kuma

import (
	"fmt"
	"strconv"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

const (
	// ProxyContainerName is the name of the container Kuma's injector adds
	// (pkg/plugins/runtime/k8s/util, KumaSidecarContainerName).
	ProxyContainerName = "kuma-sidecar"
	// ProbeProxyPortAnnotation sets the port of kuma-dp's application probe proxy; "0" turns it
	// off (pkg/plugins/runtime/k8s/metadata/annotations.go).
	ProbeProxyPortAnnotation = "kuma.io/application-probe-proxy-port"
	// DefaultProbeProxyPort is the control plane's default applicationProbeProxyPort
	// (pkg/config/app/kuma-cp/kuma-cp.defaults.yaml, runtime.kubernetes.injector).
	DefaultProbeProxyPort int32 = 9001
	// VirtualProbesAnnotation turns Kuma's legacy virtual probes on or off (deprecated in 2.9).
	VirtualProbesAnnotation = "kuma.io/virtual-probes"
	// VirtualProbesPortAnnotation is the port of the virtual probes listener.
	VirtualProbesPortAnnotation = "kuma.io/virtual-probes-port"
	// DefaultVirtualProbesPort is the control plane's default virtualProbesPort
	// (kuma-cp.defaults.yaml).
	DefaultVirtualProbesPort int32 = 9000
	// SidecarInjectionLabel is the namespace and pod label that asks for injection. Kuma reads it
	// from pod labels only; as a pod annotation it is ignored with a warning
	// (metadata/annotations.go, PodAnnotationDeprecations).
	SidecarInjectionLabel = "kuma.io/sidecar-injection"
	// MeshLabel names the Mesh a pod or namespace belongs to; the annotation of the same name is
	// deprecated but still read (pkg/plugins/runtime/k8s/util/util.go, MeshOfByLabelOrAnnotation).
	MeshLabel = "kuma.io/mesh"
	// GatewayAnnotation marks a pod as a delegated or builtin gateway.
	GatewayAnnotation = "kuma.io/gateway"

	// DefaultMesh is the Mesh a pod joins when nothing names one (pkg/core/resources/model,
	// DefaultMesh).
	DefaultMesh = "default"
	// DefaultSystemNamespace is the namespace Kuma's chart installs the control plane into.
	DefaultSystemNamespace = "kuma-system"

	// namespaceNameLabel is set by the API server on every namespace.
	namespaceNameLabel = "kubernetes.io/metadata.name"
)

// parseEnabled reads a Kuma boolean annotation or label value as Kuma's
// metadata.Annotations.GetEnabled does (pkg/plugins/runtime/k8s/metadata/annotations.go,
// GetBooleanWithDefault with enabled/disabled support): "true", "yes" and "enabled" are on,
// "false", "no" and "disabled" are off, exactly and case-sensitively; anything else is an error,
// which makes Kuma's injector refuse the pod.
func parseEnabled(key, value string) (bool, error) {
	switch value {
	case "true", "yes", "enabled":
		return true, nil
	case "false", "no", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%s has the value %q, which is none of enabled, disabled, true, false, yes, no", key, value)
}

// parseUint32 reads a port annotation as Kuma's metadata.Annotations.GetUint32 does: a decimal
// uint32 (strconv.ParseUint base 10, 32 bits); anything else is an error.
func parseUint32(key, value string) (uint32, error) {
	u, err := strconv.ParseUint(value, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s has the value %q, which is not a uint32", key, value)
	}
	return uint32(u), nil
}

// ProbeProxyState is what kuma.io/application-probe-proxy-port says.
type ProbeProxyState int

const (
	// ProbeProxyUnset: the annotation is absent; the control plane's applicationProbeProxyPort
	// applies.
	ProbeProxyUnset ProbeProxyState = iota
	// ProbeProxyEnabled: the annotation is a port above 0.
	ProbeProxyEnabled
	// ProbeProxyDisabled: the annotation is "0"; the injector falls back to virtual probes.
	ProbeProxyDisabled
	// ProbeProxyInvalid: the annotation is not a uint32, or is above 65535. Kuma's injector refuses
	// a pod whose value is not a uint32; a uint32 above 65535 passes the injector but names no TCP
	// port, so kuma-dp cannot listen on it.
	ProbeProxyInvalid
)

// String returns the state's name.
func (s ProbeProxyState) String() string {
	switch s {
	case ProbeProxyUnset:
		return "Unset"
	case ProbeProxyEnabled:
		return "Enabled"
	case ProbeProxyDisabled:
		return "Disabled"
	case ProbeProxyInvalid:
		return "Invalid"
	}
	return fmt.Sprintf("ProbeProxyState(%d)", int(s))
}

// ProbeProxy is what a pod template's or pod's annotations say about the application probe proxy.
type ProbeProxy struct {
	// State says whether the annotation is absent, a port, "0" or invalid.
	State ProbeProxyState
	// Port is the port when State is ProbeProxyEnabled, else 0.
	Port int32
	// Raw is the annotation's value, "" when absent.
	Raw string
}

// ReadProbeProxy reads kuma.io/application-probe-proxy-port from annotations, parsed as Kuma's
// pod_probe_overrider.go (ApplicationProbeProxyDisabled, SetApplicationProbeProxyPortAnnotation)
// parses it with metadata.Annotations.GetUint32.
func ReadProbeProxy(annotations map[string]string) ProbeProxy {
	raw, ok := annotations[ProbeProxyPortAnnotation]
	if !ok {
		return ProbeProxy{State: ProbeProxyUnset}
	}
	u, err := parseUint32(ProbeProxyPortAnnotation, raw)
	switch {
	case err != nil || u > 65535:
		return ProbeProxy{State: ProbeProxyInvalid, Raw: raw}
	case u == 0:
		return ProbeProxy{State: ProbeProxyDisabled, Raw: raw}
	}
	return ProbeProxy{State: ProbeProxyEnabled, Port: int32(u), Raw: raw}
}

// InjectorConfig is the part of the control plane's runtime.kubernetes.injector configuration that
// decides how probes are rewritten (pkg/config/plugins/runtime/k8s/config.go, Injector).
type InjectorConfig struct {
	// ApplicationProbeProxyPort is applicationProbeProxyPort; 0 turns the proxy off.
	ApplicationProbeProxyPort int32
	// VirtualProbesEnabled is virtualProbesEnabled.
	VirtualProbesEnabled bool
	// VirtualProbesPort is virtualProbesPort.
	VirtualProbesPort int32
}

// DefaultInjectorConfig is kuma-cp.defaults.yaml at v2.14.3: probe proxy on 9001, virtual probes
// off (on port 9000).
func DefaultInjectorConfig() InjectorConfig {
	return InjectorConfig{ApplicationProbeProxyPort: DefaultProbeProxyPort, VirtualProbesPort: DefaultVirtualProbesPort}
}

// ProbeModeKind says which of Kuma's mechanisms rewrites a pod's probes.
type ProbeModeKind string

const (
	// ProbeModeProxy: the application probe proxy rewrites HTTP, TCP and gRPC probes.
	ProbeModeProxy ProbeModeKind = "ApplicationProbeProxy"
	// ProbeModeVirtual: legacy virtual probes rewrite HTTP probes only.
	ProbeModeVirtual ProbeModeKind = "VirtualProbes"
	// ProbeModeNone: Kuma leaves every probe alone.
	ProbeModeNone ProbeModeKind = "None"
)

// ProbeMode is how Kuma's injector treats a pod's probes, and on which port.
type ProbeMode struct {
	Kind ProbeModeKind
	// Port is the probe proxy port (ProbeModeProxy) or the virtual probes port (ProbeModeVirtual).
	Port int32
}

// ProbeModeFor predicts what Kuma's injector does with the probes of a pod with podAnnotations under
// cfg. It follows the injector's default path (no transparent-proxy ConfigMap, the chart's
// default): KumaInjector.NewAnnotations in pkg/plugins/runtime/k8s/webhooks/injector/injector.go
// calls probes.SetVirtualProbesEnabledAnnotation (probe.go), setVirtualProbesPortAnnotation
// (webhooks/injector/probes.go) and probes.SetApplicationProbeProxyPortAnnotation
// (pod_probe_overrider.go); injectKuma then rewrites with SetupAppProbeProxies unless the port is 0,
// in which case overrideHTTPProbes rewrites HTTP probes when virtual probes are on:
//
//  1. A pod with the kuma.io/gateway annotation (any value): port 0 and virtual probes off, so
//     ProbeModeNone; an error if the pod asks for a probe proxy port above 0.
//  2. The probe proxy port is the pod's annotation if present, else cfg's.
//  3. Virtual probes are on when the pod's probe proxy annotation is "0", else as the pod's
//     kuma.io/virtual-probes says, else as cfg says. Their port is the pod's
//     kuma.io/virtual-probes-port, else cfg's.
//  4. Port above 0: ProbeModeProxy on it. Port 0: ProbeModeVirtual when virtual probes are on,
//     else ProbeModeNone.
//
// The error cases are those where Kuma's injector answers with an error and the API server refuses
// the pod: an annotation that is not a uint32 or not a Kuma boolean.
func ProbeModeFor(podAnnotations map[string]string, cfg InjectorConfig) (ProbeMode, error) {
	pp := ReadProbeProxy(podAnnotations)
	if pp.State == ProbeProxyInvalid {
		if _, err := parseUint32(ProbeProxyPortAnnotation, pp.Raw); err != nil {
			return ProbeMode{}, err
		}
		return ProbeMode{}, fmt.Errorf("%s has the value %q, which is not a TCP port", ProbeProxyPortAnnotation, pp.Raw)
	}
	if gw, ok := podAnnotations[GatewayAnnotation]; ok {
		if pp.State == ProbeProxyEnabled {
			return ProbeMode{}, fmt.Errorf("%s asks for the application probe proxy on a gateway pod (%s: %q), which Kuma refuses", ProbeProxyPortAnnotation, GatewayAnnotation, gw)
		}
		return ProbeMode{Kind: ProbeModeNone}, nil
	}
	port := cfg.ApplicationProbeProxyPort
	switch pp.State {
	case ProbeProxyEnabled:
		port = pp.Port
	case ProbeProxyDisabled:
		port = 0
	}
	virtual := cfg.VirtualProbesEnabled
	if raw, ok := podAnnotations[VirtualProbesAnnotation]; ok {
		on, err := parseEnabled(VirtualProbesAnnotation, raw)
		if err != nil {
			return ProbeMode{}, err
		}
		virtual = on
	}
	if pp.State == ProbeProxyDisabled {
		virtual = true
	}
	virtualPort := cfg.VirtualProbesPort
	if raw, ok := podAnnotations[VirtualProbesPortAnnotation]; ok {
		u, err := parseUint32(VirtualProbesPortAnnotation, raw)
		if err != nil {
			return ProbeMode{}, err
		}
		virtualPort = int32(u)
	}
	switch {
	case port > 0:
		return ProbeMode{Kind: ProbeModeProxy, Port: port}, nil
	case virtual:
		return ProbeMode{Kind: ProbeModeVirtual, Port: virtualPort}, nil
	}
	return ProbeMode{Kind: ProbeModeNone}, nil
}

// injectionExceptionLabels are the default runtime.kubernetes.injector.exceptions.labels of
// kuma-cp.defaults.yaml; "*" matches any value.
var injectionExceptionLabels = map[string]string{
	"openshift.io/build.name":            "*",
	"openshift.io/deployer-pod-for.name": "*",
}

// Injection says whether Kuma's injector adds kuma-sidecar to pods made from a template with
// podLabels and podAnnotations in a namespace with namespaceLabels, with Kuma's default system
// namespace kuma-system. See InjectionIn.
func Injection(namespaceLabels, podLabels, podAnnotations map[string]string) (injected bool, reason v1alpha1.StatusReason) {
	return InjectionIn(DefaultSystemNamespace, namespaceLabels, podLabels, podAnnotations)
}

// InjectionIn says whether Kuma's injector adds kuma-sidecar, for a control plane installed in
// systemNamespace. The first rule that applies decides:
//
//  1. The namespace (its kubernetes.io/metadata.name label) is kube-system or systemNamespace:
//     not injected, SystemNamespace. The chart's pod webhooks exclude both
//     (deployments/charts/kuma/templates/cp-webhooks-and-secrets.yaml, namespace-kuma-injector and
//     pods-kuma-injector); only Kuma's own zone proxies are injected there.
//  2. The pod has a label of the injector's exception list (openshift.io/build.name,
//     openshift.io/deployer-pod-for.name, any value): not injected, InjectionException
//     (webhooks/injector/precheck.go, isInjectionException).
//  3. No webhook selects the pod. The namespace webhook needs the namespace label
//     kuma.io/sidecar-injection to be "enabled" or "true"; the pod webhook needs the namespace label
//     present (any value) and the pod label exactly "enabled". Not injected, with NoInjectionLabel
//     when the namespace has no such label, NamespaceInjectionDisabled when the namespace label is
//     off and the pod does not turn injection on, and InjectionLabelNotSelected when a value Kuma's
//     injector would take as on ("yes", or "true" on the pod) is not one the webhooks select.
//  4. A webhook selects the pod; the injector's needToInject (precheck.go) reads the pod label
//     first: on (true, yes, enabled) gives injected, PodInjectionEnabled; off (false, no,
//     disabled) gives not injected, PodInjectionDisabled; any other value makes the injector fail,
//     and the API server refuses the pod: not injected, InvalidInjectionLabel.
//  5. Without the pod label the namespace label decides: injected, NamespaceInjectionEnabled.
//
// Values are case-sensitive (metadata.Annotations.GetEnabled). The pod annotation
// kuma.io/sidecar-injection is ignored by Kuma 2.14 (precheck.go logs "This is not supported you
// should use it as a label instead"), so podAnnotations never changes the answer; the parameter is
// kept so every mesh's Injection has the same shape. The namespaceAllowList chart value and
// custom exception labels are not modelled.
func InjectionIn(systemNamespace string, namespaceLabels, podLabels, podAnnotations map[string]string) (injected bool, reason v1alpha1.StatusReason) {
	_ = podAnnotations
	if ns := namespaceLabels[namespaceNameLabel]; ns == "kube-system" || (ns != "" && ns == systemNamespace) {
		return false, v1alpha1.StatusReasonSystemNamespace
	}
	for key, want := range injectionExceptionLabels {
		if got, ok := podLabels[key]; ok && (want == "*" || want == got) {
			return false, v1alpha1.StatusReasonInjectionException
		}
	}
	nsValue, nsHas := namespaceLabels[SidecarInjectionLabel]
	podValue, podHas := podLabels[SidecarInjectionLabel]
	namespaceWebhook := nsHas && (nsValue == "enabled" || nsValue == "true")
	podWebhook := nsHas && podHas && podValue == "enabled"
	if !namespaceWebhook && !podWebhook {
		podOn, podErr := parseEnabled(SidecarInjectionLabel, podValue)
		nsOn, nsErr := parseEnabled(SidecarInjectionLabel, nsValue)
		switch {
		case !nsHas:
			return false, v1alpha1.StatusReasonNoInjectionLabel
		case podHas && podErr == nil && podOn:
			return false, v1alpha1.StatusReasonInjectionLabelNotSelected
		case nsErr == nil && nsOn:
			return false, v1alpha1.StatusReasonInjectionLabelNotSelected
		}
		return false, v1alpha1.StatusReasonNamespaceInjectionDisabled
	}
	if podHas {
		on, err := parseEnabled(SidecarInjectionLabel, podValue)
		switch {
		case err != nil:
			return false, v1alpha1.StatusReasonInvalidInjectionLabel
		case !on:
			return false, v1alpha1.StatusReasonPodInjectionDisabled
		}
		return true, v1alpha1.StatusReasonPodInjectionEnabled
	}
	return true, v1alpha1.StatusReasonNamespaceInjectionEnabled
}

// MeshOf returns the name of the Kuma Mesh a pod belongs to, in the order of Kuma's
// MeshOfByLabelOrAnnotation (pkg/plugins/runtime/k8s/util/util.go): the pod's kuma.io/mesh label,
// the pod's deprecated kuma.io/mesh annotation, the namespace's label, the namespace's annotation,
// each only when not empty; otherwise "default".
func MeshOf(namespaceLabels, namespaceAnnotations, podLabels, podAnnotations map[string]string) string {
	for _, m := range []map[string]string{podLabels, podAnnotations, namespaceLabels, namespaceAnnotations} {
		if v := m[MeshLabel]; v != "" {
			return v
		}
	}
	return DefaultMesh
}
