package istio

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Template is what a workload's pod template says about the mesh, read in one place so that every
// rule about the template's labels, annotations and hostNetwork lives in this package.
type Template struct {
	// Injected is true when Istio's injector adds a sidecar to pods made from the template.
	Injected bool
	// InjectionReason says why (see Injection), or StatusReasonHostNetwork.
	InjectionReason v1alpha1.StatusReason
	// Rewrite is what the template's RewriteAnnotation says; RewriteRaw is its value ("" when absent).
	Rewrite    RewriteSetting
	RewriteRaw string
	// StatusPort is the port rewritten probes target (see StatusPort); 0 means no status server.
	StatusPort int32
	// StatusPortErr is set when StatusPortAnnotation is not a port number.
	StatusPortErr error
	// NativeSidecar is true when istio-proxy is injected as a native sidecar (an init container
	// with restartPolicy Always) and false when it is an ordinary container; NativeSidecarSource
	// says where that was read.
	NativeSidecar       bool
	NativeSidecarSource NativeSidecarSource
	// InjectionTemplates are the injection templates the pod asks for (InjectionTemplatesAnnotation),
	// nil for Istio's default ("sidecar").
	InjectionTemplates []string
}

// InjectionTemplatesAnnotation names the injection templates Istio applies to a pod, comma
// separated; without it Istio uses "sidecar" (istio/api annotation inject.istio.io/templates).
const InjectionTemplatesAnnotation = "inject.istio.io/templates"

// Istio's own injection templates (the istio-discovery chart's files/). The proxyless gRPC ones
// add no Envoy and turn the probe rewrite off themselves.
var (
	ProbeRewritingTemplates = []string{"sidecar", "gateway", "spire"}
	ProxylessTemplates      = []string{"grpc-agent", "grpc-simple"}
)

// NativeSidecarSource says how Template.NativeSidecar was decided.
type NativeSidecarSource string

const (
	// NativeSidecarFromAnnotation: the template's NativeSidecarAnnotation decides.
	NativeSidecarFromAnnotation NativeSidecarSource = "annotation"
	// NativeSidecarFromLivePods: the workload's live pods show where istio-proxy is.
	NativeSidecarFromLivePods NativeSidecarSource = "live pods"
	// NativeSidecarAssumed: nothing says; the mesh default of the Istio version is assumed (off
	// before 1.27, on from 1.27 and for an unknown version).
	NativeSidecarAssumed NativeSidecarSource = "assumed"
)

// ReadTemplate reads template's mesh settings in a namespace with namespaceLabels, as Istio at
// version istio reads them. meshStatusPort is the mesh-wide default status port
// (DefaultStatusPort unless the operator was told otherwise).
//
// Injection follows Injection, plus one rule it cannot see: Istio never injects a pod with
// spec.hostNetwork true, whatever its labels (istio/istio pkg/kube/inject/inject.go,
// injectRequired, which returns false first of all for host-network pods).
func ReadTemplate(namespaceLabels map[string]string, template *corev1.PodTemplateSpec, meshStatusPort int32, istio IstioVersion) Template {
	var t Template
	t.Injected, t.InjectionReason = Injection(namespaceLabels, template.Labels, template.Annotations, istio)
	if t.Injected && template.Spec.HostNetwork {
		t.Injected, t.InjectionReason = false, v1alpha1.StatusReasonHostNetwork
	}
	t.Rewrite, t.RewriteRaw = ReadRewriteSetting(template.Annotations)
	t.StatusPort, t.StatusPortErr = StatusPort(template.Annotations, meshStatusPort)
	if value := template.Annotations[InjectionTemplatesAnnotation]; value != "" {
		for _, name := range strings.Split(value, ",") {
			t.InjectionTemplates = append(t.InjectionTemplates, strings.TrimSpace(name))
		}
	}
	t.NativeSidecar, t.NativeSidecarSource = istio.Has(NativeSidecarsByDefault), NativeSidecarAssumed
	if value, ok := template.Annotations[NativeSidecarAnnotation]; ok {
		t.NativeSidecar, t.NativeSidecarSource = value != "false", NativeSidecarFromAnnotation
	}
	return t
}

// NativeSidecarAnnotation chooses, per pod, whether istio-proxy is injected as a native sidecar.
// Istio's injection template reads it as `ne "false"`: only exactly "false" turns native
// sidecars off, any other value turns them on, and it wins over the mesh-wide
// ENABLE_NATIVE_SIDECARS (istio/istio manifests/charts/istio-control/istio-discovery/files/
// injection-template.yaml; the annotation exists from Istio 1.24). Without it the mesh decides:
// off by default before Istio 1.27; from 1.27 "auto", which is on when every node's kubelet is
// 1.33 or newer (pkg/kube/inject/webhook.go, DetectNativeSidecar).
const NativeSidecarAnnotation = "sidecar.istio.io/nativeSidecar"

// NativeSidecarOnPod reports where a live pod's istio-proxy is: native is true when it is an init
// container, and found is false when the pod has no istio-proxy.
func NativeSidecarOnPod(spec *corev1.PodSpec) (native, found bool) {
	for _, c := range spec.InitContainers {
		if c.Name == ProxyContainerName {
			return true, true
		}
	}
	for _, c := range spec.Containers {
		if c.Name == ProxyContainerName {
			return false, true
		}
	}
	return false, false
}
