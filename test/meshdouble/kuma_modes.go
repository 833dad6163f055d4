package meshdouble

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Kuma's policy kinds read by KumaModes (kuma.io/v1alpha1, the CRDs in
// shared/fixtures/kuma-crds).
var (
	KumaMeshGVR    = schema.GroupVersionResource{Group: "kuma.io", Version: "v1alpha1", Resource: "meshes"}
	KumaMeshTLSGVR = schema.GroupVersionResource{Group: "kuma.io", Version: "v1alpha1", Resource: "meshtlses"}
)

// DefaultKumaSystemNamespace is where a zone control plane's mesh-wide
// policies live.
const DefaultKumaSystemNamespace = "kuma-system"

// KumaModes is a ModeResolver for pods injected by Kuma, written
// independently of the operator from kumahq/kuma v2.14.3. It reads, at each
// admission, the workload's Mesh (cluster-scoped; its name from the pod's
// kuma.io/mesh label, else "default") and the MeshTLS policies of
// systemNamespace ("" means kuma-system) and of the pod's namespace:
//
//   - mTLS is off (v1alpha1.MTLSDisable) when the Mesh is missing or has no
//     spec.mtls.enabledBackend; MeshTLS is then not applied either
//     (meshtls plugin.go: "skip applying MeshTLS, mTLS is disabled");
//   - otherwise the mode is the enabled backend's mode, STRICT unless it
//     says PERMISSIVE (api/mesh/v1alpha1/mesh.proto, §4.4 of the doc);
//   - a MeshTLS mode (rules[].default.mode or from[].default.mode, Strict or
//     Permissive) overrides it (meshtls plugin.go getMeshTLSMode).
//
// Which MeshTLS policies apply and which wins follows Kuma's targetRef
// matching (policies/core/matchers/dataplane.go SortByTargetRef): a policy
// of the pod's mesh (its kuma.io/mesh label, default "default") selects the
// pod when its top-level targetRef is absent or kind Mesh, kind Dataplane
// with labels all among the pod's labels, or kind MeshSubset with tags all
// among the pod's labels (plus k8s.kuma.io/namespace); a policy outside the
// system namespace selects only pods of its own namespace. Matching
// policies are ordered from least to most specific, and the later one's
// mode wins: by kind (Mesh < Dataplane < MeshSubset, common targetref.go
// order), then by role (system-namespace policies before namespaced
// "workload-owner" ones), then by name in reverse (the alphabetically first
// name wins). Within one policy the last rules[]/from[] entry with a mode
// wins. Not modelled: Dataplane targets by name or sectionName, other
// kinds, policies synced from a global control plane (origin), MeshIdentity.
//
// The mode is the same for every port: MeshTLS rules select all inbounds.
func KumaModes(dyn dynamic.Interface, systemNamespace string) ModeResolver {
	if systemNamespace == "" {
		systemNamespace = DefaultKumaSystemNamespace
	}
	return func(ctx context.Context, namespace string, podLabels map[string]string) (PortModes, error) {
		mode, err := kumaMode(ctx, dyn, systemNamespace, namespace, podLabels)
		if err != nil {
			return nil, err
		}
		return func(int32) v1alpha1.MTLSMode { return mode }, nil
	}
}

func kumaMode(ctx context.Context, dyn dynamic.Interface, systemNS, namespace string, podLabels map[string]string) (v1alpha1.MTLSMode, error) {
	meshName := podLabels[KumaMeshLabel]
	if meshName == "" {
		meshName = "default"
	}
	m, err := dyn.Resource(KumaMeshGVR).Get(ctx, meshName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return v1alpha1.MTLSDisable, nil
	}
	if err != nil {
		return "", fmt.Errorf("reading Mesh %q: %w", meshName, err)
	}
	mode := KumaMeshMode(m)
	if mode == v1alpha1.MTLSDisable {
		return mode, nil
	}

	namespaces := []string{systemNS}
	if namespace != systemNS {
		namespaces = append(namespaces, namespace)
	}
	var policies []unstructured.Unstructured
	for _, ns := range namespaces {
		list, err := dyn.Resource(KumaMeshTLSGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", fmt.Errorf("listing MeshTLS in %s: %w", ns, err)
		}
		policies = append(policies, list.Items...)
	}
	if m := KumaMeshTLSMode(policies, systemNS, namespace, meshName, podLabels); m != "" {
		mode = m
	}
	return mode, nil
}

// KumaMeshMode is the mesh-wide mode of a Mesh object: MTLSDisable without
// an enabled backend, else the enabled backend's mode (STRICT by default).
func KumaMeshMode(mesh *unstructured.Unstructured) v1alpha1.MTLSMode {
	enabled, _, _ := unstructured.NestedString(mesh.Object, "spec", "mtls", "enabledBackend")
	if enabled == "" {
		return v1alpha1.MTLSDisable
	}
	backends, _, _ := unstructured.NestedSlice(mesh.Object, "spec", "mtls", "backends")
	for _, b := range backends {
		bm, _ := b.(map[string]any)
		if bm["name"] == enabled && bm["mode"] == "PERMISSIVE" {
			return v1alpha1.MTLSPermissive
		}
	}
	return v1alpha1.MTLSStrict
}

// kumaKindOrder is common/v1alpha1 targetref.go's order of the kinds
// KumaModes matches.
var kumaKindOrder = map[string]int{"Mesh": 1, "Dataplane": 2, "MeshSubset": 3}

// KumaMeshTLSMode returns the winning MeshTLS mode for a pod of namespace
// with podLabels in mesh, among policies (see KumaModes); "" when none of
// the selecting policies sets a mode.
func KumaMeshTLSMode(policies []unstructured.Unstructured, systemNS, namespace, mesh string, podLabels map[string]string) v1alpha1.MTLSMode {
	tags := map[string]string{"k8s.kuma.io/namespace": namespace}
	for k, v := range podLabels {
		tags[k] = v
	}
	subset := func(want map[string]any) bool {
		for k, v := range want {
			if s, _ := v.(string); tags[k] != s {
				return false
			}
		}
		return true
	}
	type match struct {
		kind, role int
		name       string
		mode       v1alpha1.MTLSMode
	}
	var matches []match
	for _, p := range policies {
		policyMesh := p.GetLabels()[KumaMeshLabel]
		if policyMesh == "" {
			policyMesh = "default"
		}
		if policyMesh != mesh {
			continue
		}
		role := 1
		if p.GetNamespace() != systemNS {
			if p.GetNamespace() != namespace {
				continue
			}
			role = 4
		}
		kind := "Mesh"
		tr, found, _ := unstructured.NestedMap(p.Object, "spec", "targetRef")
		if found {
			kind, _ = tr["kind"].(string)
		}
		switch kind {
		case "Mesh":
		case "Dataplane":
			labels, ok := tr["labels"].(map[string]any)
			if !ok || !subset(labels) {
				continue // by name (or no selector): not modelled
			}
		case "MeshSubset":
			t, _ := tr["tags"].(map[string]any)
			if !subset(t) {
				continue
			}
		default:
			continue
		}
		var mode v1alpha1.MTLSMode
		for _, field := range []string{"from", "rules"} {
			entries, _, _ := unstructured.NestedSlice(p.Object, "spec", field)
			for _, e := range entries {
				em, _ := e.(map[string]any)
				switch v, _, _ := unstructured.NestedString(em, "default", "mode"); v {
				case "Strict":
					mode = v1alpha1.MTLSStrict
				case "Permissive":
					mode = v1alpha1.MTLSPermissive
				}
			}
		}
		matches = append(matches, match{kindOrder(kind), role, p.GetName(), mode})
	}
	slices.SortStableFunc(matches, func(a, b match) int {
		if c := cmp.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		if c := cmp.Compare(a.role, b.role); c != 0 {
			return c
		}
		return cmp.Compare(b.name, a.name)
	})
	var out v1alpha1.MTLSMode
	for _, m := range matches {
		if m.mode != "" {
			out = m.mode
		}
	}
	return out
}

func kindOrder(kind string) int { return kumaKindOrder[kind] }
