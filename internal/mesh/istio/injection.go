package istio

import (
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
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
//     the deprecated annotation of the same name, turns injection off: not
//     injected, PodInjectionDisabled. The label wins over the annotation, even
//     when the label is empty. Which values turn it off depends on the Istio
//     version (StrictInjectLabel): from Istio 1.27 only exactly "false"; any
//     other value falls back to the namespace's default. Before 1.27 any value
//     other than "", y, yes, true or on (case-insensitive), so "False", "no"
//     and "off" too. An unknown version follows 1.27.
//  4. The namespace has istio-injection=enabled: injected,
//     NamespaceInjectionEnabled.
//  5. The namespace has an istio.io/rev label: injected, NamespaceRevision,
//     when its value is not empty; otherwise not injected, NoInjectionLabel
//     (an empty revision selects no revision's webhook, and every other
//     webhook requires the label to be absent).
//  6. The pod has an istio.io/rev label: injected, PodRevision, when its
//     value is not empty; otherwise not injected, NoInjectionLabel (the
//     object.sidecar-injector webhook requires the label to be absent).
//  7. The pod has the label sidecar.istio.io/inject=true (exactly "true"; the
//     annotation alone does not select the webhook): injected,
//     PodInjectionEnabled.
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
// Injection does not see the pod spec; ReadTemplate adds the hostNetwork rule.
func Injection(namespaceLabels, podLabels, podAnnotations map[string]string, istio IstioVersion) (injected bool, reason v1alpha1.StatusReason) {
	if ignoredNamespaces[namespaceLabels[namespaceNameLabel]] {
		return false, v1alpha1.StatusReasonSystemNamespace
	}
	nsInjection, nsHasInjection := namespaceLabels[namespaceInjectionLabel]
	if nsHasInjection && nsInjection != "enabled" {
		return false, v1alpha1.StatusReasonNamespaceInjectionDisabled
	}

	selector, labelPresent := podLabels[label.SidecarInject.Name]
	if !labelPresent {
		selector = podAnnotations[annotation.SidecarInject.Name]
	}
	if injectionTurnedOff(selector, istio) {
		return false, v1alpha1.StatusReasonPodInjectionDisabled
	}

	// The revision label counts when present, even empty: the revision webhooks
	// select its value, the others require it absent.
	nsRevision, nsHasRevision := namespaceLabels[label.IoIstioRev.Name]
	podRevision, podHasRevision := podLabels[label.IoIstioRev.Name]
	switch {
	case nsHasInjection: // == "enabled"
		return true, v1alpha1.StatusReasonNamespaceInjectionEnabled
	case nsHasRevision:
		if nsRevision != "" {
			return true, v1alpha1.StatusReasonNamespaceRevision
		}
	case podHasRevision:
		if podRevision != "" {
			return true, v1alpha1.StatusReasonPodRevision
		}
	case labelPresent && podLabels[label.SidecarInject.Name] == "true":
		return true, v1alpha1.StatusReasonPodInjectionEnabled
	}
	return false, v1alpha1.StatusReasonNoInjectionLabel
}

// injectionTurnedOff reads the value of the pod's sidecar.istio.io/inject label (or annotation)
// as the given Istio version does.
func injectionTurnedOff(value string, istio IstioVersion) bool {
	if istio.Has(StrictInjectLabel) {
		return value == "false"
	}
	switch strings.ToLower(value) {
	case "", "y", "yes", "true", "on":
		return false
	}
	return true
}
