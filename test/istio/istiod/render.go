package istiod

import (
	"fmt"

	"istio.io/istio/operator/pkg/render"
	"istio.io/istio/pkg/config/mesh"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Chart is what Istio's istio-discovery chart renders for the sidecar
// injector: the istio-sidecar-injector ConfigMap's config and values, the
// istio ConfigMap's mesh config, and the MutatingWebhookConfiguration.
type Chart struct {
	// InjectorConfig is data.config of ConfigMap istio-sidecar-injector
	// (policy, templates, selectors).
	InjectorConfig string
	// InjectorValues is data.values of the same ConfigMap.
	InjectorValues string
	// MeshConfig is data.mesh of ConfigMap istio.
	MeshConfig string
	// Webhook is MutatingWebhookConfiguration istio-sidecar-injector.
	Webhook *unstructured.Unstructured
	// Revision is RenderOptions.Revision.
	Revision string
}

// revisioned is the name the chart gives a revision's object.
func revisioned(name, revision string) string {
	if revision == "" {
		return name
	}
	return name + "-" + revision
}

// ProxyTag is the image tag rendered into the injected istio-proxy: the
// istio.io/istio module this program is built from is a development build
// of 1.31 (its VERSION file) at commit eed52ebb66ad, tagged as Istio tags
// such builds. The operator reads the Istio version from it.
// TestProxyTagMatchesTheModule keeps it in step with go.mod.
const ProxyTag = "1.31.0-alpha.eed52ebb66ad"

// ProxyHub is the registry of Istio's development builds.
const ProxyHub = "gcr.io/istio-testing"

// RenderOptions choose the chart's values.
type RenderOptions struct {
	// RewriteAppHTTPProbe is values.sidecarInjectorWebhook.rewriteAppHTTPProbe
	// (the chart's default is true).
	RewriteAppHTTPProbe bool
	// RootNamespace is meshConfig.rootNamespace and the install namespace
	// ("" means istio-system).
	RootNamespace string
	// Revision is the control plane revision ("" is the default revision,
	// whose webhooks also serve istio.io/rev=default).
	Revision string
}

// Render renders the default profile with Istio's own renderer (istio/istio
// operator/pkg/render GenerateManifest, what `istioctl manifest generate`
// runs) over the charts embedded in the istio.io/istio module, and returns
// the injector's parts. Errors come from the renderer or a missing object.
func Render(o RenderOptions) (*Chart, error) {
	root := o.RootNamespace
	if root == "" {
		root = "istio-system"
	}
	set := []string{
		"profile=default",
		"components.ingressGateways[0].enabled=false",
		fmt.Sprintf("values.sidecarInjectorWebhook.rewriteAppHTTPProbe=%t", o.RewriteAppHTTPProbe),
		"values.global.istioNamespace=" + root,
		"values.global.hub=" + ProxyHub,
		"values.global.tag=" + ProxyTag,
		"meshConfig.rootNamespace=" + root,
	}
	if o.Revision != "" {
		set = append(set, "revision="+o.Revision)
	}
	sets, _, err := render.GenerateManifest(nil, set, false, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("istiod: rendering Istio's charts: %w", err)
	}
	c := Chart{Revision: o.Revision}
	for _, s := range sets {
		for _, m := range s.Manifests {
			switch {
			case m.GetKind() == "ConfigMap" && m.GetName() == revisioned("istio-sidecar-injector", o.Revision):
				c.InjectorConfig, _, _ = unstructured.NestedString(m.Object, "data", "config")
				c.InjectorValues, _, _ = unstructured.NestedString(m.Object, "data", "values")
			case m.GetKind() == "ConfigMap" && m.GetName() == revisioned("istio", o.Revision):
				c.MeshConfig, _, _ = unstructured.NestedString(m.Object, "data", "mesh")
			case m.GetKind() == "MutatingWebhookConfiguration" && m.GetName() == revisioned("istio-sidecar-injector", o.Revision):
				c.Webhook = m.Unstructured
			}
		}
	}
	if c.InjectorConfig == "" || c.InjectorValues == "" || c.MeshConfig == "" || c.Webhook == nil {
		return nil, fmt.Errorf("istiod: the rendered charts lack the injector ConfigMaps or webhook (config %t, values %t, mesh %t, webhook %t)",
			c.InjectorConfig != "", c.InjectorValues != "", c.MeshConfig != "", c.Webhook != nil)
	}
	return &c, nil
}

// StatusPort returns the mesh's defaultConfig.statusPort (15020 when the
// mesh config leaves it out). Errors come from parsing the mesh config.
func (c *Chart) StatusPort() (int32, error) {
	m, err := mesh.ApplyMeshConfigDefaults(c.MeshConfig)
	if err != nil {
		return 0, fmt.Errorf("istiod: the chart's mesh config: %w", err)
	}
	return m.GetDefaultConfig().GetStatusPort(), nil
}

// WebhookConfiguration returns the chart's MutatingWebhookConfiguration with
// every webhook's clientConfig replaced by url and caBundle (the chart points
// them at the istiod Service); selectors, rules, failure policy and the rest
// are the chart's. Errors come from converting the rendered object.
func (c *Chart) WebhookConfiguration(url string, caBundle []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Webhook.Object, &mwc); err != nil {
		return nil, fmt.Errorf("istiod: the chart's MutatingWebhookConfiguration: %w", err)
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
	}
	mwc.ResourceVersion = ""
	return &mwc, nil
}
