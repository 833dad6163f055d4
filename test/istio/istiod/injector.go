package istiod

import (
	"fmt"
	"net/http"

	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	"istio.io/istio/pkg/kube/inject"
)

// InjectPath is where Istio's webhook serves injection (istio/istio
// pkg/kube/inject webhook.go NewWebhook registers "/inject" and "/inject/").
const InjectPath = "/inject"

// NewInjector returns an http.Handler serving Istio's own sidecar injection
// webhook (istio/istio pkg/kube/inject, NewWebhook and its serveInject) at
// InjectPath, configured with the chart's injector config, values and mesh
// config. Every decision is Istio's: injectRequired, the injection template,
// the probe rewrite (applyRewrite) and the JSON patch.
//
// Native sidecars are off (ENABLE_NATIVE_SIDECARS=false, istio-proxy in
// spec.containers): Istio's "auto" mode reads the nodes through its
// multicluster client, which needs a running istiod. Errors come from parsing
// the chart's config, values or mesh config.
func NewInjector(c *Chart) (http.Handler, error) {
	cfg, err := inject.UnmarshalConfig([]byte(c.InjectorConfig))
	if err != nil {
		return nil, fmt.Errorf("istiod: the chart's injector config: %w", err)
	}
	meshConfig, err := mesh.ApplyMeshConfigDefaults(c.MeshConfig)
	if err != nil {
		return nil, fmt.Errorf("istiod: the chart's mesh config: %w", err)
	}
	features.EnableNativeSidecars = features.NativeSidecarModeDisabled

	env := model.NewEnvironment()
	env.Watcher = meshwatcher.NewTestWatcher(meshConfig)
	mux := http.NewServeMux()
	if _, err := inject.NewWebhook(inject.WebhookParameters{
		Watcher:  staticWatcher{config: &cfg, values: c.InjectorValues},
		Env:      env,
		Mux:      mux,
		Revision: c.Revision,
	}); err != nil {
		return nil, fmt.Errorf("istiod: starting Istio's injection webhook: %w", err)
	}
	return mux, nil
}

// staticWatcher is an inject.Watcher whose configuration never changes.
type staticWatcher struct {
	config *inject.Config
	values string
}

func (w staticWatcher) SetHandler(func(*inject.Config, string) error) {}
func (w staticWatcher) Run(<-chan struct{})                           {}
func (w staticWatcher) Get() (*inject.Config, string, error)          { return w.config, w.values, nil }
