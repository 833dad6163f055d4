package istio

import (
	"fmt"
	"strconv"

	"istio.io/api/annotation"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// The annotation constants equal annotation.SidecarRewriteAppHTTPProbers.Name
// and annotation.SidecarStatusPort.Name from istio.io/api (those are variables,
// so they cannot initialise a constant); the tests check that they stay equal.
const (
	// RewriteAnnotation is the pod annotation that overrides the mesh-wide
	// rewriteAppHTTPProbe setting for one pod. Istio reads it only from the
	// pod (for workloads: spec.template.metadata.annotations).
	RewriteAnnotation = "sidecar.istio.io/rewriteAppHTTPProbers"
	// StatusPortAnnotation sets the pilot-agent status port of one pod. "0"
	// switches the status server off.
	StatusPortAnnotation = "status.sidecar.istio.io/port"
	// DefaultStatusPort is the mesh default status port (meshConfig
	// defaultConfig.statusPort).
	DefaultStatusPort int32 = 15020
	// ProxyContainerName is the name of the injected sidecar, found either in
	// spec.containers or, in native-sidecar mode, in spec.initContainers.
	ProxyContainerName = "istio-proxy"
	// KubeAppProbersEnv is the istio-proxy environment variable that holds the
	// original probes as JSON, keyed by ProberPath.
	KubeAppProbersEnv = "ISTIO_KUBE_APP_PROBERS"
)

// RewriteSetting is what a pod's RewriteAnnotation says.
type RewriteSetting int

const (
	// RewriteUnset means the annotation is absent; the mesh default applies.
	RewriteUnset RewriteSetting = iota
	// RewriteEnabled means the annotation parses as true.
	RewriteEnabled
	// RewriteDisabled means the annotation parses as false.
	RewriteDisabled
	// RewriteInvalid means the annotation is present but strconv.ParseBool
	// rejects it (for example "yes" or ""). Istio ignores such a value
	// silently and applies the mesh default, exactly as for RewriteUnset.
	RewriteInvalid
)

// String returns Unset, Enabled, Disabled or Invalid.
func (s RewriteSetting) String() string {
	switch s {
	case RewriteUnset:
		return "Unset"
	case RewriteEnabled:
		return "Enabled"
	case RewriteDisabled:
		return "Disabled"
	case RewriteInvalid:
		return "Invalid"
	}
	return fmt.Sprintf("RewriteSetting(%d)", int(s))
}

// Rewrites reports whether Istio rewrites the pod's probes under this setting
// when the mesh-wide sidecarInjectorWebhook.rewriteAppHTTPProbe is meshDefault
// (true in every default profile since Istio 1.6).
func (s RewriteSetting) Rewrites(meshDefault bool) bool {
	switch s {
	case RewriteEnabled:
		return true
	case RewriteDisabled:
		return false
	}
	return meshDefault
}

// ReadRewriteSetting reads RewriteAnnotation the way Istio's
// ShouldRewriteAppHTTPProbers does: a value that strconv.ParseBool accepts
// (1 t T TRUE true True 0 f F FALSE false False) decides; any other value,
// including the empty string, is RewriteInvalid, which Istio treats as unset.
// raw is the annotation value, "" when absent.
func ReadRewriteSetting(annotations map[string]string) (setting RewriteSetting, raw string) {
	raw, ok := annotations[annotation.SidecarRewriteAppHTTPProbers.Name]
	if !ok {
		return RewriteUnset, ""
	}
	v, err := strconv.ParseBool(raw)
	switch {
	case err != nil:
		return RewriteInvalid, raw
	case v:
		return RewriteEnabled, raw
	default:
		return RewriteDisabled, raw
	}
}

// StatusPort returns the port that rewritten probes target for a pod with
// these annotations: the value of StatusPortAnnotation when it is a valid port
// (a decimal in 0..65535, as Istio's parsePort accepts; "0" returns 0, nil and
// means nothing serves rewritten probes), else meshDefault.
//
// An unparsable value returns meshDefault and an error. Note that Istio's
// injector validates this annotation: with an invalid value injection fails and
// the webhook (failurePolicy Fail) rejects the pod, so the error usually means
// the pod cannot be created at all rather than "uses the default".
func StatusPort(annotations map[string]string, meshDefault int32) (int32, error) {
	raw, ok := annotations[annotation.SidecarStatusPort.Name]
	if !ok {
		return meshDefault, nil
	}
	p, err := strconv.ParseUint(raw, 10, 16)
	if err != nil {
		return meshDefault, fmt.Errorf("annotation %s=%q is not a port number in 0..65535", annotation.SidecarStatusPort.Name, raw)
	}
	return int32(p), nil
}

// ProberPath is the path of Istio's status.FormatProberURL for one probe:
// /app-health/<container>/readyz, /livez or /startupz. It returns "" for an
// unknown kind.
func ProberPath(container string, kind v1alpha1.ProbeKind) string {
	var suffix string
	switch kind {
	case v1alpha1.ProbeReadiness:
		suffix = "readyz"
	case v1alpha1.ProbeLiveness:
		suffix = "livez"
	case v1alpha1.ProbeStartup:
		suffix = "startupz"
	default:
		return ""
	}
	return "/app-health/" + container + "/" + suffix
}
