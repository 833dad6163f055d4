package mesh

import (
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
}

// ReadTemplate reads template's mesh settings in a namespace with namespaceLabels. meshStatusPort
// is the mesh-wide default status port (DefaultStatusPort unless the operator was told otherwise).
//
// Injection follows Injection, plus one rule it cannot see: Istio never injects a pod with
// spec.hostNetwork true, whatever its labels (istio/istio pkg/kube/inject/inject.go,
// injectRequired, which returns false first of all for host-network pods).
func ReadTemplate(namespaceLabels map[string]string, template *corev1.PodTemplateSpec, meshStatusPort int32) Template {
	var t Template
	t.Injected, t.InjectionReason = Injection(namespaceLabels, template.Labels, template.Annotations)
	if t.Injected && template.Spec.HostNetwork {
		t.Injected, t.InjectionReason = false, v1alpha1.StatusReasonHostNetwork
	}
	t.Rewrite, t.RewriteRaw = ReadRewriteSetting(template.Annotations)
	t.StatusPort, t.StatusPortErr = StatusPort(template.Annotations, meshStatusPort)
	return t
}
