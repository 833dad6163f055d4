package mesh

import (
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
)

// Reasons returned by Injection. They are UpperCamel so callers can put them in
// condition reasons unchanged.
const (
	ReasonSystemNamespace            = "SystemNamespace"
	ReasonNamespaceInjectionDisabled = "NamespaceInjectionDisabled"
	ReasonPodInjectionDisabled       = "PodInjectionDisabled"
	ReasonNamespaceInjectionEnabled  = "NamespaceInjectionEnabled"
	ReasonNamespaceRevision          = "NamespaceRevision"
	ReasonPodInjectionEnabled        = "PodInjectionEnabled"
	ReasonPodRevision                = "PodRevision"
	ReasonNoInjectionLabel           = "NoInjectionLabel"
	// ReasonHostNetwork is not returned by Injection (it does not see the pod
	// spec); callers that find spec.hostNetwork true should report it.
	ReasonHostNetwork = "HostNetwork"
)

const (
	// namespaceInjectionLabel is the legacy namespace label istio-injection.
	namespaceInjectionLabel = "istio-injection"
	// namespaceNameLabel is set by the API server on every namespace.
	namespaceNameLabel = "kubernetes.io/metadata.name"
)

// ignoredNamespaces are never injected (istio/istio pkg/kube/inject
// IgnoredNamespaces).
var ignoredNamespaces = map[string]bool{
	"kube-system":        true,
	"kube-public":        true,
	"kube-node-lease":    true,
	"local-path-storage": true,
}

// Injection reports whether Istio's sidecar injector adds a sidecar to pods
// created from a template with podLabels and podAnnotations in a namespace
// with namespaceLabels, and a short UpperCamel reason. The first rule that
// applies decides:
//
//  1. The namespace is kube-system, kube-public, kube-node-lease or
//     local-path-storage (read from the kubernetes.io/metadata.name label the
//     API server sets): not injected, SystemNamespace.
//  2. The namespace has the istio-injection label with any value other than
//     "enabled" (normally "disabled"): not injected,
//     NamespaceInjectionDisabled. Every webhook of the default configuration
//     requires istio-injection to be "enabled" or absent.
//  3. The pod's sidecar.istio.io/inject label, or when that label is absent
//     the deprecated annotation of the same name, has a value other than "",
//     y, yes, true or on (case-insensitive), normally "false": not injected,
//     PodInjectionDisabled. The label wins over the annotation, even when the
//     label is empty.
//  4. The namespace has istio-injection=enabled: injected,
//     NamespaceInjectionEnabled.
//  5. The namespace has a non-empty istio.io/rev label: injected,
//     NamespaceRevision.
//  6. The pod has the label sidecar.istio.io/inject=true (exactly "true"; the
//     annotation alone does not select the webhook): injected,
//     PodInjectionEnabled.
//  7. The pod has a non-empty istio.io/rev label: injected, PodRevision.
//  8. Otherwise not injected, NoInjectionLabel.
//
// These follow the default MutatingWebhookConfiguration of the
// istio-discovery chart (webhooks namespace., object., rev.namespace. and
// rev.object.sidecar-injector.istio.io) and injectRequired in
// pkg/kube/inject/inject.go, with the injector policy "enabled" and no
// neverInjectSelector/alwaysInjectSelector. They assume the default revision
// (or a "default" tag) and any named revision actually exist, and that
// sidecarInjectorWebhook.enableNamespacesByDefault is off.
//
// Injection does not see the pod spec. Istio never injects a pod with
// spec.hostNetwork true, whatever its labels; callers must check that
// themselves and may report ReasonHostNetwork.
func Injection(namespaceLabels, podLabels, podAnnotations map[string]string) (injected bool, reason string) {
	if ignoredNamespaces[namespaceLabels[namespaceNameLabel]] {
		return false, ReasonSystemNamespace
	}
	nsInjection, nsHasInjection := namespaceLabels[namespaceInjectionLabel]
	if nsHasInjection && nsInjection != "enabled" {
		return false, ReasonNamespaceInjectionDisabled
	}

	selector, labelPresent := podLabels[label.SidecarInject.Name]
	if !labelPresent {
		selector = podAnnotations[annotation.SidecarInject.Name]
	}
	switch strings.ToLower(selector) {
	case "", "y", "yes", "true", "on":
	default:
		return false, ReasonPodInjectionDisabled
	}

	switch {
	case nsHasInjection: // == "enabled"
		return true, ReasonNamespaceInjectionEnabled
	case namespaceLabels[label.IoIstioRev.Name] != "":
		return true, ReasonNamespaceRevision
	case labelPresent && podLabels[label.SidecarInject.Name] == "true":
		return true, ReasonPodInjectionEnabled
	case podLabels[label.IoIstioRev.Name] != "":
		return true, ReasonPodRevision
	}
	return false, ReasonNoInjectionLabel
}
