/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package istio

import (
	"cmp"
	"slices"

	securityv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

// Resolver computes the effective Istio PeerAuthentication mode for a workload and its container
// ports, following the precedence of Istio's ComposePeerAuthentication (istio/istio
// pilot/pkg/model/authentication.go): the oldest mesh-wide policy (root namespace, no selector),
// then the oldest namespace-wide policy, then the oldest matching workload policy, each overriding
// the previous one unless its mode is UNSET, with PERMISSIVE when nothing applies; portLevelMtls
// comes from the chosen workload policy only. It works from a snapshot of PeerAuthentications
// (root namespace + any namespaces). It is immutable after NewResolver, so it is safe for concurrent use.
type Resolver struct {
	// mesh is the oldest selectorless policy in the root namespace, or nil.
	mesh *policy
	// namespaces holds the oldest selectorless policy of each non-root namespace.
	namespaces map[string]*policy
	// workloads holds the selector policies of each non-root namespace, oldest first, so the first
	// match is the one Istio picks.
	workloads map[string][]*policy
}

// policy is the part of a PeerAuthentication that resolution needs. It is copied out of the API
// object so that later changes to the caller's objects cannot change a Resolver's answers.
type policy struct {
	namespace string
	name      string
	created   metav1.Time
	// mode is "" for UNSET, which inherits from the wider scope.
	mode     v1alpha1.MTLSMode
	selector map[string]string
	// ports holds portLevelMtls; "" values inherit the workload-level result.
	ports map[uint32]v1alpha1.MTLSMode
}

// NewResolver indexes policies for rootNamespace (Istio's meshConfig.rootNamespace, usually
// "istio-system"). Nil entries and policies being deleted are skipped.
func NewResolver(rootNamespace string, policies []*securityv1.PeerAuthentication) *Resolver {
	r := &Resolver{
		namespaces: map[string]*policy{},
		workloads:  map[string][]*policy{},
	}
	for _, pa := range policies {
		// A deleting policy is on its way out; counting it would make the result flap once it is gone.
		if pa == nil || pa.DeletionTimestamp != nil {
			continue
		}
		p := newPolicy(pa)
		switch {
		case len(p.selector) == 0 && p.namespace == rootNamespace:
			if r.mesh == nil || older(p, r.mesh) {
				r.mesh = p
			}
		case len(p.selector) == 0:
			if cur := r.namespaces[p.namespace]; cur == nil || older(p, cur) {
				r.namespaces[p.namespace] = p
			}
		case p.namespace != rootNamespace:
			r.workloads[p.namespace] = append(r.workloads[p.namespace], p)
		default:
			// A selector policy in the root namespace: Istio's ComposePeerAuthentication ignores
			// it, although the proto comment still says it matches in all namespaces (istio/api#3604).
		}
	}
	for _, ps := range r.workloads {
		slices.SortFunc(ps, compareAge)
	}
	return r
}

// NamespaceMode is the effective mode for a workload in namespace that no workload-specific policy
// selects (mesh-wide then namespace-wide, UNSET inherits, none => PERMISSIVE).
func (r *Resolver) NamespaceMode(namespace string) v1alpha1.MTLSMode {
	return r.compose(namespace, nil).Mode
}

// ForWorkload is the effective result for a workload in namespace whose pods carry labels.
func (r *Resolver) ForWorkload(namespace string, labels map[string]string) mesh.Modes {
	return r.compose(namespace, r.workloadPolicy(namespace, labels))
}

// compose mirrors Istio's ComposePeerAuthentication: start at PERMISSIVE and let each narrower
// scope override unless its mode is UNSET. For the root namespace r.namespaces has no entry, so
// the mesh policy doubles as the namespace policy, as in Istio.
func (r *Resolver) compose(namespace string, workload *policy) mesh.Modes {
	w := mesh.Modes{Mode: v1alpha1.MTLSPermissive}
	for _, p := range []*policy{r.mesh, r.namespaces[namespace], workload} {
		if p != nil && p.mode != "" {
			w.Mode = p.mode
			w.Source = p.namespace + "/" + p.name
		}
	}
	// Port-level settings come from the workload policy only, even when its own mode is UNSET.
	if workload != nil && len(workload.ports) > 0 {
		w.PortModes = make(map[uint32]v1alpha1.MTLSMode, len(workload.ports))
		for port, m := range workload.ports {
			if m == "" {
				m = w.Mode
			}
			w.PortModes[port] = m
		}
	}
	return w
}

// workloadPolicy returns the oldest selector policy in namespace whose matchLabels are a subset
// of labels, or nil.
func (r *Resolver) workloadPolicy(namespace string, labels map[string]string) *policy {
	for _, p := range r.workloads[namespace] {
		if subsetOf(p.selector, labels) {
			return p
		}
	}
	return nil
}

func newPolicy(pa *securityv1.PeerAuthentication) *policy {
	p := &policy{
		namespace: pa.Namespace,
		name:      pa.Name,
		created:   pa.CreationTimestamp,
		mode:      modeOf(pa.Spec.GetMtls()),
	}
	if ml := pa.Spec.GetSelector().GetMatchLabels(); len(ml) > 0 {
		p.selector = make(map[string]string, len(ml))
		for k, v := range ml {
			p.selector[k] = v
		}
	}
	if pl := pa.Spec.GetPortLevelMtls(); len(pl) > 0 {
		p.ports = make(map[uint32]v1alpha1.MTLSMode, len(pl))
		for port, m := range pl {
			p.ports[port] = modeOf(m)
		}
	}
	return p
}

// modeOf maps the proto enum to the API mode; "" means UNSET. An unknown value (from an API newer
// than this build) is treated as UNSET, so it inherits rather than inventing a mode.
func modeOf(m *securityv1beta1.PeerAuthentication_MutualTLS) v1alpha1.MTLSMode {
	switch m.GetMode() {
	case securityv1beta1.PeerAuthentication_MutualTLS_STRICT:
		return v1alpha1.MTLSStrict
	case securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE:
		return v1alpha1.MTLSPermissive
	case securityv1beta1.PeerAuthentication_MutualTLS_DISABLE:
		return v1alpha1.MTLSDisable
	default:
		return ""
	}
}

// compareAge orders policies oldest first, breaking ties by name then namespace, like Istio's
// sortConfigByCreationTime; creationTimestamp has one-second resolution, so ties are common.
func compareAge(a, b *policy) int {
	if c := a.created.Compare(b.created.Time); c != 0 {
		return c
	}
	if c := cmp.Compare(a.name, b.name); c != 0 {
		return c
	}
	return cmp.Compare(a.namespace, b.namespace)
}

func older(a, b *policy) bool { return compareAge(a, b) < 0 }

// subsetOf reports whether every selector label is present in labels with the same value, like
// Istio's labels.Instance.SubsetOf.
func subsetOf(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
