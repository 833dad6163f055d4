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
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

const (
	root = "istio-system"
	ns   = "app"

	unset      = securityv1beta1.PeerAuthentication_MutualTLS_UNSET
	strict     = securityv1beta1.PeerAuthentication_MutualTLS_STRICT
	permissive = securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE
	disable    = securityv1beta1.PeerAuthentication_MutualTLS_DISABLE
)

// baseTime is the default creationTimestamp; created(n) makes a policy n seconds newer.
var baseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type paOption func(*securityv1.PeerAuthentication)

// newPA builds a PeerAuthentication created at baseTime with no mtls, selector or ports.
func newPA(namespace, name string, opts ...paOption) *securityv1.PeerAuthentication {
	pa := &securityv1.PeerAuthentication{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         namespace,
			Name:              name,
			CreationTimestamp: metav1.NewTime(baseTime),
		},
	}
	for _, o := range opts {
		o(pa)
	}
	return pa
}

func mode(m securityv1beta1.PeerAuthentication_MutualTLS_Mode) paOption {
	return func(pa *securityv1.PeerAuthentication) {
		pa.Spec.Mtls = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: m}
	}
}

// selector sets matchLabels from key, value pairs; with no pairs it sets an empty, non-nil selector.
func selector(kv ...string) paOption {
	return func(pa *securityv1.PeerAuthentication) {
		ml := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			ml[kv[i]] = kv[i+1]
		}
		pa.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: ml}
	}
}

func port(p uint32, m securityv1beta1.PeerAuthentication_MutualTLS_Mode) paOption {
	return func(pa *securityv1.PeerAuthentication) {
		if pa.Spec.PortLevelMtls == nil {
			pa.Spec.PortLevelMtls = map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{}
		}
		pa.Spec.PortLevelMtls[p] = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: m}
	}
}

func created(secondsAfterBase int) paOption {
	return func(pa *securityv1.PeerAuthentication) {
		pa.CreationTimestamp = metav1.NewTime(baseTime.Add(time.Duration(secondsAfterBase) * time.Second))
	}
}

func deleting() paOption {
	return func(pa *securityv1.PeerAuthentication) {
		now := metav1.NewTime(baseTime.Add(time.Hour))
		pa.DeletionTimestamp = &now
	}
}

func pas(p ...*securityv1.PeerAuthentication) []*securityv1.PeerAuthentication { return p }

var webLabels = map[string]string{"app": "web", "version": "v1"}

func TestForWorkload(t *testing.T) {
	tests := []struct {
		name      string
		policies  []*securityv1.PeerAuthentication
		namespace string            // defaults to ns
		labels    map[string]string // defaults to webLabels
		want      mesh.Modes
	}{
		{
			name: "no policy defaults to PERMISSIVE",
			want: mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name:     "nil entries are skipped",
			policies: pas(nil, newPA(root, "default", mode(strict)), nil),
			want:     mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "istio-system/default"},
		},
		{
			name:     "mesh STRICT",
			policies: pas(newPA(root, "default", mode(strict))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "istio-system/default"},
		},
		{
			name:     "namespace PERMISSIVE overrides mesh STRICT",
			policies: pas(newPA(root, "default", mode(strict)), newPA(ns, "default", mode(permissive))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSPermissive, Source: "app/default"},
		},
		{
			name:     "namespace UNSET inherits mesh",
			policies: pas(newPA(root, "default", mode(strict)), newPA(ns, "default", mode(unset))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "istio-system/default"},
		},
		{
			name:     "namespace without mtls inherits mesh",
			policies: pas(newPA(root, "default", mode(disable)), newPA(ns, "default")),
			want:     mesh.Modes{Mode: v1alpha1.MTLSDisable, Source: "istio-system/default"},
		},
		{
			name:     "mesh UNSET counts as PERMISSIVE and namespace UNSET inherits it",
			policies: pas(newPA(root, "default", mode(unset)), newPA(ns, "default", mode(unset))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name:     "mesh UNSET then namespace STRICT",
			policies: pas(newPA(root, "default", mode(unset)), newPA(ns, "default", mode(strict))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/default"},
		},
		{
			name: "two mesh policies, oldest wins",
			policies: pas(
				newPA(root, "newer", mode(permissive), created(10)),
				newPA(root, "older", mode(strict), created(5)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "istio-system/older"},
		},
		{
			name: "two namespace-wide policies, oldest wins regardless of order",
			policies: pas(
				newPA(ns, "newer", mode(disable), created(10)),
				newPA(ns, "older", mode(strict), created(5)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/older"},
		},
		{
			name: "two namespace-wide policies with the same timestamp, lower name wins",
			policies: pas(
				newPA(ns, "b", mode(disable)),
				newPA(ns, "a", mode(strict)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/a"},
		},
		{
			name:     "empty matchLabels counts as namespace-wide",
			policies: pas(newPA(ns, "default", mode(strict), selector())),
			want:     mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/default"},
		},
		{
			name: "workload selector that is a subset of the labels overrides the namespace",
			policies: pas(
				newPA(ns, "default", mode(permissive)),
				newPA(ns, "web", mode(strict), selector("app", "web")),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/web"},
		},
		{
			name: "workload selector with a different value does not match",
			policies: pas(
				newPA(ns, "default", mode(permissive)),
				newPA(ns, "api", mode(strict), selector("app", "api")),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSPermissive, Source: "app/default"},
		},
		{
			name: "workload selector with a label the pods lack does not match",
			policies: pas(
				newPA(ns, "web-v1-canary", mode(strict), selector("app", "web", "track", "canary")),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name:     "workload selector never matches unlabelled pods",
			policies: pas(newPA(ns, "web", mode(strict), selector("app", "web"))),
			labels:   map[string]string{},
			want:     mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name: "two matching workload policies, oldest wins and the newer one's ports are ignored",
			policies: pas(
				newPA(ns, "newer", mode(disable), selector("app", "web"), port(8080, permissive), created(10)),
				newPA(ns, "older", mode(strict), selector("version", "v1"), created(5)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/older"},
		},
		{
			name: "two matching workload policies with the same timestamp, lower name wins",
			policies: pas(
				newPA(ns, "web-b", mode(disable), selector("app", "web")),
				newPA(ns, "web-a", mode(strict), selector("app", "web")),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/web-a"},
		},
		{
			name: "an older non-matching workload policy does not shadow a matching one",
			policies: pas(
				newPA(ns, "api", mode(disable), selector("app", "api"), created(1)),
				newPA(ns, "web", mode(strict), selector("app", "web"), created(9)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/web"},
		},
		{
			name: "root-namespace policy with a selector is ignored",
			policies: pas(
				newPA(root, "default", mode(strict)),
				newPA(root, "web", mode(disable), selector("app", "web"), port(8080, disable)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "istio-system/default"},
		},
		{
			name:     "root-namespace policy with a selector alone leaves the default",
			policies: pas(newPA(root, "web", mode(strict), selector("app", "web"))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name: "portLevelMtls DISABLE on one port with workload STRICT",
			policies: pas(
				newPA(ns, "web", mode(strict), selector("app", "web"), port(8080, disable)),
			),
			want: mesh.Modes{
				Mode:      v1alpha1.MTLSStrict,
				PortModes: map[uint32]v1alpha1.MTLSMode{8080: v1alpha1.MTLSDisable},
				Source:    "app/web",
			},
		},
		{
			name: "port entry UNSET inherits the workload mode",
			policies: pas(
				newPA(ns, "web", mode(strict), selector("app", "web"), port(8080, unset), port(9090, permissive)),
			),
			want: mesh.Modes{
				Mode:      v1alpha1.MTLSStrict,
				PortModes: map[uint32]v1alpha1.MTLSMode{8080: v1alpha1.MTLSStrict, 9090: v1alpha1.MTLSPermissive},
				Source:    "app/web",
			},
		},
		{
			name: "workload UNSET inherits the namespace but its ports still apply",
			policies: pas(
				newPA(root, "default", mode(permissive)),
				newPA(ns, "default", mode(strict)),
				newPA(ns, "web", selector("app", "web"), port(8080, disable), port(9090, unset)),
			),
			want: mesh.Modes{
				Mode:      v1alpha1.MTLSStrict,
				PortModes: map[uint32]v1alpha1.MTLSMode{8080: v1alpha1.MTLSDisable, 9090: v1alpha1.MTLSStrict},
				Source:    "app/default",
			},
		},
		{
			name:     "portLevelMtls on a namespace-wide policy is ignored",
			policies: pas(newPA(ns, "default", mode(strict), port(8080, disable))),
			want:     mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "app/default"},
		},
		{
			name: "policies in another non-root namespace do not apply",
			policies: pas(
				newPA("other", "default", mode(strict)),
				newPA("other", "web", mode(strict), selector("app", "web")),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name: "deleting namespace policy is ignored and the newer one wins",
			policies: pas(
				newPA(root, "default", mode(strict)),
				newPA(ns, "older", mode(disable), created(1), deleting()),
				newPA(ns, "newer", mode(permissive), created(2)),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSPermissive, Source: "app/newer"},
		},
		{
			name: "deleting mesh and workload policies are ignored",
			policies: pas(
				newPA(root, "default", mode(strict), deleting()),
				newPA(ns, "web", mode(strict), selector("app", "web"), port(8080, disable), deleting()),
			),
			want: mesh.Modes{Mode: v1alpha1.MTLSPermissive},
		},
		{
			name: "workload in the root namespace gets the mesh policy and root selectors are ignored",
			policies: pas(
				newPA(root, "default", mode(strict)),
				newPA(root, "web", mode(disable), selector("app", "web")),
				newPA(ns, "default", mode(disable)),
			),
			namespace: root,
			want:      mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "istio-system/default"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			namespace, labels := ns, webLabels
			if tc.namespace != "" {
				namespace = tc.namespace
			}
			if tc.labels != nil {
				labels = tc.labels
			}
			got := NewResolver(root, tc.policies).ForWorkload(namespace, labels)
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestNamespaceMode(t *testing.T) {
	tests := []struct {
		name      string
		policies  []*securityv1.PeerAuthentication
		namespace string
		want      v1alpha1.MTLSMode
	}{
		{name: "no policy", namespace: ns, want: v1alpha1.MTLSPermissive},
		{
			name:      "mesh STRICT",
			policies:  pas(newPA(root, "default", mode(strict))),
			namespace: ns,
			want:      v1alpha1.MTLSStrict,
		},
		{
			name:      "namespace overrides mesh",
			policies:  pas(newPA(root, "default", mode(strict)), newPA(ns, "default", mode(disable))),
			namespace: ns,
			want:      v1alpha1.MTLSDisable,
		},
		{
			name:      "namespace UNSET inherits mesh",
			policies:  pas(newPA(root, "default", mode(strict)), newPA(ns, "default", mode(unset))),
			namespace: ns,
			want:      v1alpha1.MTLSStrict,
		},
		{
			name:      "mesh UNSET is PERMISSIVE",
			policies:  pas(newPA(root, "default", mode(unset))),
			namespace: ns,
			want:      v1alpha1.MTLSPermissive,
		},
		{
			name:      "workload-specific policies do not count",
			policies:  pas(newPA(ns, "web", mode(strict), selector("app", "web"))),
			namespace: ns,
			want:      v1alpha1.MTLSPermissive,
		},
		{
			name:      "another namespace's policy does not count",
			policies:  pas(newPA("other", "default", mode(strict))),
			namespace: ns,
			want:      v1alpha1.MTLSPermissive,
		},
		{
			name:      "root namespace uses the mesh policy",
			policies:  pas(newPA(root, "default", mode(strict)), newPA(root, "web", mode(disable), selector("app", "web"))),
			namespace: root,
			want:      v1alpha1.MTLSStrict,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(NewResolver(root, tc.policies).NamespaceMode(tc.namespace)).To(Equal(tc.want))
		})
	}
}

func TestWorkloadForPort(t *testing.T) {
	w := mesh.Modes{
		Mode:      v1alpha1.MTLSStrict,
		PortModes: map[uint32]v1alpha1.MTLSMode{8080: v1alpha1.MTLSDisable},
	}
	tests := []struct {
		name string
		port int32
		want v1alpha1.MTLSMode
	}{
		{name: "port with an override", port: 8080, want: v1alpha1.MTLSDisable},
		{name: "port without an override", port: 9090, want: v1alpha1.MTLSStrict},
		{name: "zero port", port: 0, want: v1alpha1.MTLSStrict},
		{name: "negative port", port: -1, want: v1alpha1.MTLSStrict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(w.ForPort(tc.port)).To(Equal(tc.want))
		})
	}
}

func TestResolverIsASnapshot(t *testing.T) {
	g := NewWithT(t)
	web := newPA(ns, "web", mode(strict), selector("app", "web"), port(8080, disable))
	r := NewResolver(root, pas(web))

	// Changing the input objects or a returned map must not change later answers.
	web.Spec.Mtls.Mode = disable
	web.Spec.Selector.MatchLabels["app"] = "api"
	web.Spec.PortLevelMtls[8080].Mode = strict
	first := r.ForWorkload(ns, webLabels)
	first.PortModes[8080] = v1alpha1.MTLSPermissive

	g.Expect(r.ForWorkload(ns, webLabels)).To(Equal(mesh.Modes{
		Mode:      v1alpha1.MTLSStrict,
		PortModes: map[uint32]v1alpha1.MTLSMode{8080: v1alpha1.MTLSDisable},
		Source:    "app/web",
	}))
}

func TestZeroResolver(t *testing.T) {
	g := NewWithT(t)
	var r Resolver
	g.Expect(r.ForWorkload(ns, webLabels)).To(Equal(mesh.Modes{Mode: v1alpha1.MTLSPermissive}))
	g.Expect(r.NamespaceMode(ns)).To(Equal(v1alpha1.MTLSPermissive))
}
