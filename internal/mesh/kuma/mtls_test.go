package kuma

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMeshFromUnstructured(t *testing.T) {
	tests := []struct {
		name, doc string
		want      Mesh
		wantErr   string
	}{
		{name: "no mtls", doc: "metadata: {name: default}\nspec: {}", want: Mesh{Name: "default", Mode: v1alpha1.MTLSDisable}},
		{name: "strict by default", doc: `
metadata: {name: m}
spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin}]}}`, want: Mesh{Name: "m", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSStrict}},
		{name: "permissive", doc: `
metadata: {name: m}
spec: {mtls: {enabledBackend: ca-2, backends: [{name: ca-1, mode: STRICT}, {name: ca-2, type: builtin, mode: PERMISSIVE}]}}`, want: Mesh{Name: "m", EnabledBackend: "ca-2", Mode: v1alpha1.MTLSPermissive}},
		{name: "numeric mode", doc: `
metadata: {name: m}
spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, mode: 1}]}}`, want: Mesh{Name: "m", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSPermissive}},
		{name: "backends but none enabled", doc: `
metadata: {name: m}
spec: {mtls: {backends: [{name: ca-1}]}}`, want: Mesh{Name: "m", Mode: v1alpha1.MTLSDisable}},
		{name: "enabledBackend names no backend", doc: `
metadata: {name: m}
spec: {mtls: {enabledBackend: ca-9, backends: [{name: ca-1}]}}`, wantErr: "names none"},
		{name: "unknown mode", doc: `
metadata: {name: m}
spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, mode: LAX}]}}`, wantErr: "unknown mode"},
		{name: "backends not a list", doc: `
metadata: {name: m}
spec: {mtls: {enabledBackend: ca-1, backends: ca-1}}`, wantErr: "backends"},
		{name: "no name", doc: "spec: {}", wantErr: "no metadata.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MeshFromUnstructured(obj(t, tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMeshTLSFromUnstructured(t *testing.T) {
	got, err := MeshTLSFromUnstructured(obj(t, `
metadata:
  name: strict-backend
  namespace: apps
  creationTimestamp: "2026-01-02T03:04:05Z"
  labels: {kuma.io/mesh: prod, kuma.io/origin: zone}
spec:
  targetRef: {kind: Dataplane, labels: {app: backend}, sectionName: http}
  rules:
  - default: {mode: Permissive}
  - default: {tlsVersion: {min: TLS13}}
  - default: {mode: Strict}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Mesh != "prod" || got.Origin != "zone" || got.Mode != v1alpha1.MTLSStrict || got.DisplayName != "strict-backend" ||
		got.TargetRef.Kind != kindDataplane || got.TargetRef.SectionName != "http" || !reflect.DeepEqual(got.TargetRef.Labels, map[string]string{"app": "backend"}) ||
		got.CreationTimestamp.IsZero() {
		t.Errorf("got %+v", got)
	}
	def, err := MeshTLSFromUnstructured(obj(t, "metadata: {name: p, namespace: kuma-system}\nspec: {from: [{targetRef: {kind: Mesh}, default: {mode: Permissive}}]}"))
	if err != nil || def.Mesh != "default" || def.TargetRef.Kind != kindMesh || def.Mode != v1alpha1.MTLSPermissive {
		t.Errorf("defaults: %+v, %v", def, err)
	}
	bad := map[string]string{
		"kind":      "metadata: {name: p, namespace: a}\nspec: {targetRef: {kind: MeshService, name: x}, rules: [{default: {mode: Strict}}]}",
		"mode":      "metadata: {name: p, namespace: a}\nspec: {rules: [{default: {mode: STRICT}}]}",
		"both":      "metadata: {name: p, namespace: a}\nspec: {rules: [{default: {mode: Strict}}], from: [{targetRef: {kind: Mesh}, default: {mode: Strict}}]}",
		"from kind": "metadata: {name: p, namespace: a}\nspec: {from: [{targetRef: {kind: MeshSubset}, default: {mode: Strict}}]}",
		"no kind":   "metadata: {name: p, namespace: a}\nspec: {targetRef: {name: x}}",
		"rules":     "metadata: {name: p, namespace: a}\nspec: {rules: strict}",
	}
	for name, doc := range bad {
		if _, err := MeshTLSFromUnstructured(obj(t, doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func policy(ns, name string, mode v1alpha1.MTLSMode, ref TargetRef) MeshTLS {
	if ref.Kind == "" {
		ref.Kind = kindMesh
	}
	return MeshTLS{Namespace: ns, Name: name, Mesh: "default", Origin: originZone, TargetRef: ref, Mode: mode}
}

func TestResolver(t *testing.T) {
	strictMesh := Mesh{Name: "default", EnabledBackend: "ca", Mode: v1alpha1.MTLSStrict}
	permissiveMesh := Mesh{Name: "default", EnabledBackend: "ca", Mode: v1alpha1.MTLSPermissive}
	offMesh := Mesh{Name: "default", Mode: v1alpha1.MTLSDisable}
	app := map[string]string{"app": "web"}
	const S, P = v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive
	tests := []struct {
		name     string
		mesh     Mesh
		policies []MeshTLS
		ns       string
		labels   map[string]string
		want     mesh.Modes
	}{
		{name: "mesh mode alone", mesh: permissiveMesh, ns: "apps", labels: app, want: mesh.Modes{Mode: P, Source: "Mesh default"}},
		{name: "permissive mesh, strict MeshTLS for one workload", mesh: permissiveMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "web-strict", S, TargetRef{Kind: kindDataplane, Labels: app})},
			want:     mesh.Modes{Mode: S, Source: "apps/web-strict"}},
		{name: "the strict MeshTLS does not reach another workload", mesh: permissiveMesh, ns: "apps", labels: map[string]string{"app": "db"},
			policies: []MeshTLS{policy("apps", "web-strict", S, TargetRef{Kind: kindDataplane, Labels: app})},
			want:     mesh.Modes{Mode: P, Source: "Mesh default"}},
		{name: "no mTLS: MeshTLS cannot turn it on", mesh: offMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("kuma-system", "all-strict", S, TargetRef{})},
			want:     mesh.Modes{Mode: v1alpha1.MTLSDisable, Source: "Mesh default"}},
		{name: "system namespace policy applies everywhere", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("kuma-system", "all-permissive", P, TargetRef{})},
			want:     mesh.Modes{Mode: P, Source: "kuma-system/all-permissive"}},
		{name: "namespace policy applies only to its namespace", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("other", "all-permissive", P, TargetRef{})},
			want:     mesh.Modes{Mode: S, Source: "Mesh default"}},
		{name: "workload-owner beats system at the same kind", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "ns", S, TargetRef{}), policy("kuma-system", "sys", P, TargetRef{})},
			want:     mesh.Modes{Mode: S, Source: "apps/ns"}},
		{name: "MeshSubset beats Dataplane", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{
				policy("apps", "subset", P, TargetRef{Kind: kindMeshSubset, Tags: app}),
				policy("apps", "dp", S, TargetRef{Kind: kindDataplane, Labels: app}),
			},
			want: mesh.Modes{Mode: P, Source: "apps/subset"}},
		{name: "Dataplane beats Mesh", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{
				policy("apps", "dp", P, TargetRef{Kind: kindDataplane}),
				policy("apps", "mesh", S, TargetRef{}),
			},
			want: mesh.Modes{Mode: P, Source: "apps/dp"}},
		{name: "zone origin beats global origin", mesh: strictMesh, ns: "apps", labels: app,
			policies: func() []MeshTLS {
				g := policy("kuma-system", "a-global", P, TargetRef{})
				g.Origin = originGlobal
				z := policy("kuma-system", "z-zone", S, TargetRef{})
				return []MeshTLS{z, g}
			}(),
			want: mesh.Modes{Mode: S, Source: "kuma-system/z-zone"}},
		{name: "name order on ties: the smaller name wins", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "b", S, TargetRef{}), policy("apps", "a", P, TargetRef{})},
			want:     mesh.Modes{Mode: P, Source: "apps/a"}},
		{name: "display name decides, not the object name", mesh: strictMesh, ns: "apps", labels: app,
			policies: func() []MeshTLS {
				a := policy("apps", "a", P, TargetRef{})
				a.DisplayName = "z"
				return []MeshTLS{a, policy("apps", "b", S, TargetRef{})}
			}(),
			want: mesh.Modes{Mode: S, Source: "apps/b"}},
		{name: "a stronger policy without a mode keeps the weaker one's", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "mesh", P, TargetRef{}), policy("apps", "dp", "", TargetRef{Kind: kindDataplane, Labels: app})},
			want:     mesh.Modes{Mode: P, Source: "apps/mesh"}},
		{name: "other mesh ignored", mesh: strictMesh, ns: "apps", labels: app,
			policies: func() []MeshTLS { p := policy("apps", "x", P, TargetRef{}); p.Mesh = "other"; return []MeshTLS{p} }(),
			want:     mesh.Modes{Mode: S, Source: "Mesh default"}},
		{name: "shadow ignored", mesh: strictMesh, ns: "apps", labels: app,
			policies: func() []MeshTLS { p := policy("apps", "x", P, TargetRef{}); p.Shadow = true; return []MeshTLS{p} }(),
			want:     mesh.Modes{Mode: S, Source: "Mesh default"}},
		{name: "gateway-only proxyTypes ignored", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "gw", P, TargetRef{ProxyTypes: []string{"Gateway"}})},
			want:     mesh.Modes{Mode: S, Source: "Mesh default"}},
		{name: "MeshSubset wildcard and namespace tag", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("kuma-system", "s", P, TargetRef{Kind: kindMeshSubset, Tags: map[string]string{"app": "*", kubeNamespaceTag: "apps"}})},
			want:     mesh.Modes{Mode: P, Source: "kuma-system/s"}},
		{name: "Dataplane by name does not match a template", mesh: strictMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "one-pod", P, TargetRef{Kind: kindDataplane, Name: "web-0"})},
			want:     mesh.Modes{Mode: S, Source: "Mesh default"}},
		{name: "sectionName goes to PortModes", mesh: permissiveMesh, ns: "apps", labels: app,
			policies: []MeshTLS{policy("apps", "port", S, TargetRef{Kind: kindDataplane, Labels: app, SectionName: "8080"})},
			want:     mesh.Modes{Mode: P, Source: "Mesh default", PortModes: map[uint32]v1alpha1.MTLSMode{8080: S}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewResolver([]Mesh{tt.mesh}, tt.policies, "kuma-system")
			got := r.ForWorkload("default", tt.ns, tt.labels)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ForWorkload = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolverUnknownMeshAndPods(t *testing.T) {
	r := NewResolver([]Mesh{{Name: "default", EnabledBackend: "ca", Mode: v1alpha1.MTLSPermissive}},
		[]MeshTLS{
			policy("apps", "one-pod", v1alpha1.MTLSStrict, TargetRef{Kind: kindDataplane, Name: "web-0"}),
			policy("apps", "named-port", v1alpha1.MTLSStrict, TargetRef{Kind: kindDataplane, SectionName: "http"}),
		}, "kuma-system")
	if got := r.ForWorkload("nope", "apps", nil); got.Mode != v1alpha1.MTLSDisable || got.Source != "" {
		t.Errorf("unknown mesh: %+v", got)
	}
	if got := r.MeshMode("nope"); got != v1alpha1.MTLSDisable {
		t.Errorf("MeshMode(nope) = %s", got)
	}
	if got := r.MeshMode("default"); got != v1alpha1.MTLSPermissive {
		t.Errorf("MeshMode(default) = %s", got)
	}
	ports := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9090}}
	got := r.ForPod("default", "apps", "web-0", nil, ports)
	want := mesh.Modes{Mode: v1alpha1.MTLSStrict, Source: "apps/one-pod", PortModes: map[uint32]v1alpha1.MTLSMode{8080: v1alpha1.MTLSStrict}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ForPod = %+v, want %+v", got, want)
	}
	// A numeric sectionName does not select a named port.
	r2 := NewResolver([]Mesh{{Name: "default", EnabledBackend: "ca", Mode: v1alpha1.MTLSPermissive}},
		[]MeshTLS{policy("apps", "num", v1alpha1.MTLSStrict, TargetRef{Kind: kindDataplane, SectionName: "8080"})}, "kuma-system")
	if got := r2.ForPod("default", "apps", "web-1", nil, ports); got.PortModes != nil {
		t.Errorf("numeric section on a named port: %+v", got)
	}
}
