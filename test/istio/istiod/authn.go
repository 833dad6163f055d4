package istiod

import (
	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/security/authn"
	"istio.io/istio/pilot/pkg/serviceregistry/aggregate"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	"istio.io/istio/pkg/config/schema/gvk"
)

// MTLS is Istio's own resolution of the PeerAuthentications that apply to
// workloads: which policies select a workload
// (pilot/pkg/model/authentication.go, AuthenticationPolicies
// GetPeerAuthenticationsForWorkload) and how they compose per port
// (pilot/pkg/security/authn policy_applier.go, ComposePeerAuthentication,
// through NewMtlsPolicy).
type MTLS struct {
	policies model.PeerAuthnPolicies
	push     *model.PushContext
}

// NewMTLS builds Istio's authentication policy index for policies, with
// rootNamespace as meshConfig.rootNamespace ("" means istio-system), the way
// istiod's push context does (PushContext.InitContext over a config store).
func NewMTLS(rootNamespace string, policies []*securityv1.PeerAuthentication) (*MTLS, error) {
	meshConfig := mesh.DefaultMeshConfig()
	if rootNamespace != "" {
		meshConfig.RootNamespace = rootNamespace
	}
	store := model.NewFakeStore()
	for _, p := range policies {
		if _, err := store.Create(config.Config{
			Meta: config.Meta{
				GroupVersionKind:  gvk.PeerAuthentication,
				Name:              p.Name,
				Namespace:         p.Namespace,
				CreationTimestamp: p.CreationTimestamp.Time,
			},
			Spec: &p.Spec,
		}); err != nil {
			return nil, err
		}
	}
	env := model.NewEnvironment()
	env.Watcher = meshwatcher.NewTestWatcher(meshConfig)
	env.ConfigStore = store
	env.ServiceDiscovery = aggregate.NewController(aggregate.Options{})
	env.VirtualServiceController = model.NewVirtualServiceController(store, model.VSControllerOptions{}, env.Watcher)
	env.NetworksWatcher = meshwatcher.NewFixedNetworksWatcher(nil)
	env.Init()
	push := model.NewPushContext()
	push.InitContext(env, nil, nil)
	return &MTLS{policies: push.AuthnPolicies, push: push}, nil
}

// ModeForPort returns Istio's effective mode for a workload with
// workloadLabels in namespace, on port (0: the workload-wide mode, as no
// port-level setting has port 0): STRICT, PERMISSIVE or DISABLE.
func (m *MTLS) ModeForPort(namespace string, workloadLabels map[string]string, port uint32) v1alpha1.MTLSMode {
	return v1alpha1.MTLSMode(authn.NewMtlsPolicy(m.push, m.policies, namespace, labels.Instance(workloadLabels), false).
		GetMutualTLSModeForPort(port).String())
}

// PortModes returns ModeForPort for one workload as meshdouble.PortModes.
func (m *MTLS) PortModes(namespace string, workloadLabels map[string]string) meshdouble.PortModes {
	policy := authn.NewMtlsPolicy(m.push, m.policies, namespace, labels.Instance(workloadLabels), false)
	return func(port int32) v1alpha1.MTLSMode {
		return v1alpha1.MTLSMode(policy.GetMutualTLSModeForPort(uint32(port)).String()) //nolint:gosec // ports are 0..65535
	}
}
