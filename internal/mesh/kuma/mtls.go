package kuma

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

// Labels and annotations Kuma puts on policies and Dataplanes (api/mesh/v1alpha1/dataplane_helpers.go;
// pkg/plugins/resources/k8s/store.go keeps the display name in an annotation on Kubernetes).
const (
	originLabel         = "kuma.io/origin"
	policyRoleLabel     = "kuma.io/policy-role"
	effectLabel         = "kuma.io/effect"
	displayNameKey      = "kuma.io/display-name"
	kubeNamespaceTag    = "k8s.kuma.io/namespace"
	roleSystem          = "system"
	roleWorkloadOwner   = "workload-owner"
	originGlobal        = "global"
	originZone          = "zone"
	kindMesh            = "Mesh"
	kindMeshSubset      = "MeshSubset"
	kindDataplane       = "Dataplane"
	proxyTypeSidecar    = "Sidecar"
	kumaModeStrict      = "Strict"
	kumaModePermissive  = "Permissive"
	meshBackendStrict   = "STRICT"
	meshBackendPermissv = "PERMISSIVE"
)

// Mesh is the part of a kuma.io/v1alpha1 Mesh the decision reads.
type Mesh struct {
	// Name is the Mesh's name (Meshes are cluster-scoped).
	Name string
	// EnabledBackend is spec.mtls.enabledBackend, "" when mTLS is off.
	EnabledBackend string
	// Mode is the enabled backend's mode: STRICT (also when the backend sets none; the proto's
	// default, api/mesh/v1alpha1/mesh.proto CertificateAuthorityBackend.Mode) or PERMISSIVE; DISABLE
	// when EnabledBackend is "".
	Mode v1alpha1.MTLSMode
}

// MeshFromUnstructured reads a kuma.io/v1alpha1 Mesh. Its spec is Kuma's Mesh proto in JSON, where
// a backend's mode may be the enum's name or number. It returns an error for an object Kuma's Mesh
// validator (pkg/core/resources/apis/mesh/mesh_validator.go) would refuse or that this package
// cannot read: no name, enabledBackend naming no backend, a mode other than STRICT/PERMISSIVE (or
// 0/1), or fields of the wrong type.
func MeshFromUnstructured(u *unstructured.Unstructured) (Mesh, error) {
	if u == nil {
		return Mesh{}, fmt.Errorf("mesh: nil object")
	}
	m := Mesh{Name: u.GetName(), Mode: v1alpha1.MTLSDisable}
	if m.Name == "" {
		return Mesh{}, fmt.Errorf("mesh: no metadata.name")
	}
	enabled, _, err := unstructured.NestedString(u.Object, "spec", "mtls", "enabledBackend")
	if err != nil {
		return Mesh{}, fmt.Errorf("mesh %s: spec.mtls.enabledBackend: %w", m.Name, err)
	}
	if enabled == "" {
		return m, nil
	}
	backends, _, err := unstructured.NestedSlice(u.Object, "spec", "mtls", "backends")
	if err != nil {
		return Mesh{}, fmt.Errorf("mesh %s: spec.mtls.backends: %w", m.Name, err)
	}
	for i, b := range backends {
		obj, ok := b.(map[string]any)
		if !ok {
			return Mesh{}, fmt.Errorf("mesh %s: spec.mtls.backends[%d] is not an object", m.Name, i)
		}
		if name, _ := obj["name"].(string); name != enabled {
			continue
		}
		mode, err := backendMode(obj["mode"])
		if err != nil {
			return Mesh{}, fmt.Errorf("mesh %s: spec.mtls.backends[%d].mode: %w", m.Name, i, err)
		}
		m.EnabledBackend, m.Mode = enabled, mode
		return m, nil
	}
	return Mesh{}, fmt.Errorf("mesh %s: spec.mtls.enabledBackend %q names none of spec.mtls.backends", m.Name, enabled)
}

// backendMode reads CertificateAuthorityBackend.mode: absent is STRICT (= 0), PERMISSIVE is 1.
func backendMode(v any) (v1alpha1.MTLSMode, error) {
	switch x := v.(type) {
	case nil:
		return v1alpha1.MTLSStrict, nil
	case string:
		switch x {
		case meshBackendStrict, "0", "":
			return v1alpha1.MTLSStrict, nil
		case meshBackendPermissv, "1":
			return v1alpha1.MTLSPermissive, nil
		}
	case int64:
		switch x {
		case 0:
			return v1alpha1.MTLSStrict, nil
		case 1:
			return v1alpha1.MTLSPermissive, nil
		}
	case float64:
		switch x {
		case 0:
			return v1alpha1.MTLSStrict, nil
		case 1:
			return v1alpha1.MTLSPermissive, nil
		}
	}
	return "", fmt.Errorf("unknown mode %v (want STRICT or PERMISSIVE)", v)
}

// TargetRef is the part of a policy's top-level spec.targetRef that decides which Dataplanes it
// selects (api/common/v1alpha1/targetref.go).
type TargetRef struct {
	// Kind is Mesh (also when spec.targetRef is absent), MeshSubset or Dataplane, the kinds MeshTLS
	// allows (pkg/plugins/policies/meshtls/api/v1alpha1/validator.go, validateTop).
	Kind string
	// Name and Namespace select one Dataplane (on Kubernetes the pod's name; Namespace defaults to
	// the policy's).
	Name, Namespace string
	// Labels select Dataplanes by their labels (Dataplane kind); nil when unset.
	Labels map[string]string
	// Tags select inbounds by their tags (MeshSubset kind).
	Tags map[string]string
	// SectionName restricts a Dataplane targetRef to one inbound: a container port's name, or its
	// number when the port has no name.
	SectionName string
	// ProxyTypes restricts Mesh and MeshSubset to Sidecar and/or Gateway; empty means both.
	ProxyTypes []string
}

// MeshTLS is the part of a kuma.io/v1alpha1 MeshTLS policy the decision reads.
type MeshTLS struct {
	Namespace, Name string
	// Mesh is the policy's kuma.io/mesh label, "default" when absent.
	Mesh              string
	CreationTimestamp metav1.Time
	// Origin is the kuma.io/origin label: "zone" for a policy made on this zone's control plane,
	// "global" for one synced from a global control plane, "" when unset.
	Origin string
	// Role is the kuma.io/policy-role label; "" lets the Resolver compute it as Kuma does
	// (system in the system namespace, workload-owner elsewhere).
	Role string
	// DisplayName is the kuma.io/display-name annotation, else the name; ties between otherwise
	// equal policies go to the smaller display name.
	DisplayName string
	// Shadow is true for a policy with kuma.io/effect: shadow, which Kuma does not apply.
	Shadow    bool
	TargetRef TargetRef
	// Mode is the last of the policy's rules[].default.mode (or, without rules, from[].default.mode)
	// that is set, as STRICT or PERMISSIVE; "" when no entry sets a mode.
	Mode v1alpha1.MTLSMode
}

// MeshTLSFromUnstructured reads a kuma.io/v1alpha1 MeshTLS. It returns an error for a policy
// Kuma's validator (pkg/plugins/policies/meshtls/api/v1alpha1/validator.go) refuses or that this
// package cannot read: a top-level targetRef kind other than Mesh, MeshSubset or Dataplane, both
// rules and from, a from[].targetRef kind other than Mesh, a mode other than Strict/Permissive, or
// fields of the wrong type.
func MeshTLSFromUnstructured(u *unstructured.Unstructured) (MeshTLS, error) {
	if u == nil {
		return MeshTLS{}, fmt.Errorf("meshtls: nil object")
	}
	id := u.GetNamespace() + "/" + u.GetName()
	labels := u.GetLabels()
	p := MeshTLS{
		Namespace:         u.GetNamespace(),
		Name:              u.GetName(),
		Mesh:              labels[MeshLabel],
		CreationTimestamp: u.GetCreationTimestamp(),
		Origin:            labels[originLabel],
		Role:              labels[policyRoleLabel],
		DisplayName:       u.GetAnnotations()[displayNameKey],
		Shadow:            labels[effectLabel] == "shadow",
	}
	if p.Mesh == "" {
		p.Mesh = DefaultMesh
	}
	if p.DisplayName == "" {
		p.DisplayName = labels[displayNameKey]
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
	ref, err := readTargetRef(u.Object, "spec", "targetRef")
	if err != nil {
		return MeshTLS{}, fmt.Errorf("meshtls %s: spec.targetRef: %w", id, err)
	}
	switch ref.Kind {
	case kindMesh, kindMeshSubset, kindDataplane:
	default:
		return MeshTLS{}, fmt.Errorf("meshtls %s: spec.targetRef.kind %q is not one MeshTLS allows (Mesh, MeshSubset, Dataplane)", id, ref.Kind)
	}
	p.TargetRef = ref
	rules, hasRules, err := unstructured.NestedSlice(u.Object, "spec", "rules")
	if err != nil {
		return MeshTLS{}, fmt.Errorf("meshtls %s: spec.rules: %w", id, err)
	}
	from, hasFrom, err := unstructured.NestedSlice(u.Object, "spec", "from")
	if err != nil {
		return MeshTLS{}, fmt.Errorf("meshtls %s: spec.from: %w", id, err)
	}
	if hasRules && hasFrom && len(rules) > 0 && len(from) > 0 {
		return MeshTLS{}, fmt.Errorf("meshtls %s: spec.from must be empty when spec.rules is set", id)
	}
	entries, field := rules, "rules"
	if len(rules) == 0 {
		entries, field = from, "from"
	}
	for i, e := range entries {
		obj, ok := e.(map[string]any)
		if !ok {
			return MeshTLS{}, fmt.Errorf("meshtls %s: spec.%s[%d] is not an object", id, field, i)
		}
		if field == "from" {
			fr, err := readTargetRef(obj, "targetRef")
			if err != nil {
				return MeshTLS{}, fmt.Errorf("meshtls %s: spec.from[%d].targetRef: %w", id, i, err)
			}
			if fr.Kind != kindMesh {
				return MeshTLS{}, fmt.Errorf("meshtls %s: spec.from[%d].targetRef.kind %q is not Mesh", id, i, fr.Kind)
			}
		}
		raw, found, err := unstructured.NestedString(obj, "default", "mode")
		if err != nil {
			return MeshTLS{}, fmt.Errorf("meshtls %s: spec.%s[%d].default.mode: %w", id, field, i, err)
		}
		if !found {
			continue
		}
		switch raw {
		case kumaModeStrict:
			p.Mode = v1alpha1.MTLSStrict
		case kumaModePermissive:
			p.Mode = v1alpha1.MTLSPermissive
		default:
			return MeshTLS{}, fmt.Errorf("meshtls %s: spec.%s[%d].default.mode %q is neither Strict nor Permissive", id, field, i, raw)
		}
	}
	return p, nil
}

// readTargetRef reads a targetRef object; an absent one is kind Mesh (Kuma's default top-level
// targetRef, validator.go).
func readTargetRef(obj map[string]any, fields ...string) (TargetRef, error) {
	m, found, err := unstructured.NestedMap(obj, fields...)
	if err != nil {
		return TargetRef{}, err
	}
	if !found {
		return TargetRef{Kind: kindMesh}, nil
	}
	var ref TargetRef
	str := func(key string) (string, error) {
		v, _, err := unstructured.NestedString(m, key)
		return v, err
	}
	if ref.Kind, err = str("kind"); err != nil {
		return TargetRef{}, err
	}
	if ref.Kind == "" {
		return TargetRef{}, fmt.Errorf("kind is missing")
	}
	if ref.Name, err = str("name"); err != nil {
		return TargetRef{}, err
	}
	if ref.Namespace, err = str("namespace"); err != nil {
		return TargetRef{}, err
	}
	if ref.SectionName, err = str("sectionName"); err != nil {
		return TargetRef{}, err
	}
	if l, found, err := unstructured.NestedStringMap(m, "labels"); err != nil {
		return TargetRef{}, fmt.Errorf("labels: %w", err)
	} else if found {
		if l == nil {
			l = map[string]string{}
		}
		ref.Labels = l
	}
	if ref.Tags, _, err = unstructured.NestedStringMap(m, "tags"); err != nil {
		return TargetRef{}, fmt.Errorf("tags: %w", err)
	}
	if ref.ProxyTypes, _, err = unstructured.NestedStringSlice(m, "proxyTypes"); err != nil {
		return TargetRef{}, fmt.Errorf("proxyTypes: %w", err)
	}
	return ref, nil
}

// Resolver answers the effective mTLS mode of a workload's inbound traffic from a snapshot of Meshes
// and MeshTLS policies. It is immutable after NewResolver and safe for concurrent use.
type Resolver struct {
	meshes          map[string]Mesh
	policies        []MeshTLS
	systemNamespace string
}

// NewResolver indexes meshes and policies. systemNamespace is Kuma's system namespace (usually
// "kuma-system"): a policy there has the system role and applies to the whole Mesh; a policy in any
// other namespace has the workload-owner role and applies only to Dataplanes of its own namespace
// (pkg/core/resources/labels/compute.go, ComputePolicyRole; matchers/dataplane.go,
// dppSelectedByNamespace). A kuma.io/policy-role label on the policy wins over that computation, as
// in Kuma. Shadow policies (kuma.io/effect: shadow) are left out (matchers/dataplane.go,
// MatchedPolicies).
func NewResolver(meshes []Mesh, policies []MeshTLS, systemNamespace string) *Resolver {
	r := &Resolver{meshes: map[string]Mesh{}, systemNamespace: systemNamespace}
	for _, m := range meshes {
		r.meshes[m.Name] = m
	}
	for _, p := range policies {
		if p.Shadow {
			continue
		}
		p.TargetRef.Labels = cloneMap(p.TargetRef.Labels)
		p.TargetRef.Tags = cloneMap(p.TargetRef.Tags)
		p.TargetRef.ProxyTypes = slices.Clone(p.TargetRef.ProxyTypes)
		if p.Role == "" {
			p.Role = roleWorkloadOwner
			if p.Namespace == systemNamespace || p.Namespace == "" {
				p.Role = roleSystem
			}
		}
		if p.DisplayName == "" {
			p.DisplayName = p.Name
		}
		r.policies = append(r.policies, p)
	}
	slices.SortStableFunc(r.policies, comparePolicies)
	return r
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// kindOrder is Kuma's targetRef kind order (api/common/v1alpha1/targetref.go, order): a kind later
// in it is more specific and wins. Note that MeshSubset comes after Dataplane.
var kindOrder = map[string]int{kindMesh: 1, kindDataplane: 2, kindMeshSubset: 3}

// originOrder is ResourceOrigin.Compare (api/mesh/v1alpha1/dataplane_helpers.go): global, unset,
// zone; zone wins.
var originOrder = map[string]int{originGlobal: 1, "": 2, originZone: 3}

// roleOrder is PolicyRole.Compare (dataplane_helpers.go): system, producer, consumer,
// workload-owner; workload-owner wins.
var roleOrder = map[string]int{roleSystem: 1, "producer": 2, "consumer": 3, roleWorkloadOwner: 4}

// comparePolicies orders policies from weakest to strongest, as Kuma sorts the entries of inbound
// rules before merging their confs in order (pkg/plugins/policies/core/rules/inbound/sort.go, Sort;
// rules/sort/sort.go, CompareByPolicyAttributes and CompareByDisplayName): targetRef kind, then
// for two Dataplane targetRefs labels before name and no sectionName before a sectionName
// (TargetRef.CompareDataplaneKind), then origin, then role, then display name in reverse, so that
// of two otherwise equal policies the one whose display name sorts first is applied last and wins.
func comparePolicies(a, b MeshTLS) int {
	if c := kindOrder[a.TargetRef.Kind] - kindOrder[b.TargetRef.Kind]; c != 0 {
		return c
	}
	if c := compareDataplaneKind(a.TargetRef, b.TargetRef); c != 0 {
		return c
	}
	if c := originOrder[a.Origin] - originOrder[b.Origin]; c != 0 {
		return c
	}
	if c := roleOrder[a.Role] - roleOrder[b.Role]; c != 0 {
		return c
	}
	if c := cmp.Compare(b.DisplayName, a.DisplayName); c != 0 {
		return c
	}
	// Not in Kuma (its sort is stable over the store's order): keep the result deterministic.
	return cmp.Compare(b.Namespace+"/"+b.Name, a.Namespace+"/"+a.Name)
}

// compareDataplaneKind is TargetRef.CompareDataplaneKind (api/common/v1alpha1/targetref.go).
func compareDataplaneKind(a, b TargetRef) int {
	if a.Kind != kindDataplane || b.Kind != kindDataplane {
		return 0
	}
	switch {
	case a.Name != "" && b.Labels != nil:
		return 1
	case a.Labels != nil && b.Name != "":
		return -1
	case a.SectionName != "" && b.SectionName == "":
		return 1
	case a.SectionName == "" && b.SectionName != "":
		return -1
	}
	return 0
}

// HasMesh reports whether the Resolver knows the Mesh meshName.
func (r *Resolver) HasMesh(meshName string) bool {
	_, ok := r.meshes[meshName]
	return ok
}

// MeshMode returns the Mesh's own mode; DISABLE for a Mesh the Resolver does not know.
func (r *Resolver) MeshMode(meshName string) v1alpha1.MTLSMode {
	m, ok := r.meshes[meshName]
	if !ok || m.Mode == "" {
		return v1alpha1.MTLSDisable
	}
	return m.Mode
}

// ForWorkload returns the effective mode for pods with podLabels in namespace that belong to the
// Mesh meshName. It is ForPod without a pod name or container ports: a Dataplane targetRef that
// names one pod never matches, and a sectionName is taken as a port number.
func (r *Resolver) ForWorkload(meshName, namespace string, podLabels map[string]string) mesh.Modes {
	return r.ForPod(meshName, namespace, "", podLabels, nil)
}

// ForPod returns the effective mode for the inbound traffic of a pod (podName may be "" for a
// template) with podLabels and container ports in namespace, in the Mesh meshName:
//
//  1. An unknown Mesh gives DISABLE with no Source (Kuma's injector refuses pods of a Mesh that does
//     not exist: webhooks/injector/precheck.go).
//  2. A Mesh without mTLS gives DISABLE, Source "Mesh <name>": MeshTLS cannot turn mTLS on, since
//     Kuma's MeshTLS plugin skips a Mesh whose mTLS is off
//     (pkg/plugins/policies/meshtls/plugin/v1alpha1/plugin.go, Apply: "skip applying MeshTLS, mTLS
//     is disabled"). The exception, a workload identity from a MeshIdentity policy, is not modelled.
//  3. Otherwise the Mesh's backend mode, Source "Mesh <name>", overridden in order by the mode of
//     each matching MeshTLS from weakest to strongest (see comparePolicies): Kuma merges the
//     matching rules' confs in that order (rules/inbound/inboundrules.go, MatchesAllIncomingTraffic)
//     and takes the merged mode, or the backend's mode when none is set (plugin.go, getMeshTLSMode).
//     Source is then "namespace/name" of the policy whose mode won.
//
// A policy matches when it is in the same Mesh, applies to the pod's namespace (see NewResolver),
// and its targetRef selects the pod (matchers/dataplane.go, DppSelectedByPolicy): Mesh always
// (unless proxyTypes leaves out Sidecar); MeshSubset when every tag equals the inbound tag (or is "*"), taken
// here as the pod's labels plus k8s.kuma.io/namespace (tags Kuma derives from Services, such as
// kuma.io/service, only match if the caller put them into podLabels); Dataplane when it names no
// pod and no labels (all), names this pod (name, namespace defaulting to the policy's), or its
// labels all equal the Dataplane's labels (the pod's labels plus k8s.kuma.io/namespace and
// kuma.io/mesh). A Dataplane targetRef with a sectionName selects only that inbound: its mode goes
// into PortModes under the container port (named port, or a number when that port has no name) and
// not into Mode.
func (r *Resolver) ForPod(meshName, namespace, podName string, podLabels map[string]string, ports []corev1.ContainerPort) mesh.Modes {
	m, ok := r.meshes[meshName]
	if !ok {
		return mesh.Modes{Mode: v1alpha1.MTLSDisable}
	}
	meshSource := "Mesh " + m.Name
	if m.Mode == "" || m.Mode == v1alpha1.MTLSDisable {
		return mesh.Modes{Mode: v1alpha1.MTLSDisable, Source: meshSource}
	}
	dpLabels := map[string]string{}
	for k, v := range podLabels {
		dpLabels[k] = v
	}
	dpLabels[kubeNamespaceTag] = namespace
	tags := cloneMap(dpLabels)
	dpLabels[MeshLabel] = meshName

	type matched struct {
		p    *MeshTLS
		port uint32 // 0: the whole workload
	}
	var list []matched
	for i := range r.policies {
		p := &r.policies[i]
		if p.Mesh != meshName || (p.Role != roleSystem && p.Namespace != namespace) {
			continue
		}
		ref := p.TargetRef
		switch ref.Kind {
		case kindMesh:
			if proxyTypeOK(ref.ProxyTypes) {
				list = append(list, matched{p: p})
			}
		case kindMeshSubset:
			if proxyTypeOK(ref.ProxyTypes) && tagsMatch(ref.Tags, tags) {
				list = append(list, matched{p: p})
			}
		case kindDataplane:
			refNS := ref.Namespace
			if refNS == "" {
				refNS = p.Namespace
			}
			selected := (ref.Name == "" && ref.Namespace == "" && ref.Labels == nil) ||
				(ref.Name != "" && podName != "" && ref.Name == podName && refNS == namespace) ||
				(ref.Labels != nil && subsetOf(ref.Labels, dpLabels))
			if !selected {
				continue
			}
			if ref.SectionName == "" {
				list = append(list, matched{p: p})
				continue
			}
			if port, ok := sectionPort(ref.SectionName, ports); ok {
				list = append(list, matched{p: p, port: port})
			}
		}
	}

	w := mesh.Modes{Mode: m.Mode, Source: meshSource}
	portList := map[uint32]bool{}
	for _, x := range list {
		if x.port != 0 {
			portList[x.port] = true
			continue
		}
		if x.p.Mode != "" {
			w.Mode, w.Source = x.p.Mode, x.p.Namespace+"/"+x.p.Name
		}
	}
	for port := range portList {
		mode := m.Mode
		for _, x := range list {
			if (x.port == 0 || x.port == port) && x.p.Mode != "" {
				mode = x.p.Mode
			}
		}
		if w.PortModes == nil {
			w.PortModes = map[uint32]v1alpha1.MTLSMode{}
		}
		w.PortModes[port] = mode
	}
	return w
}

// sectionPort resolves a Dataplane targetRef's sectionName to a container port: Kuma names an
// inbound by its container port's name, or by the port number when the port has no name
// (api/mesh/v1alpha1/dataplane_helpers.go, Dataplane_Networking_Inbound.GetSectionName;
// pkg/plugins/runtime/k8s/controllers/inbound_converter.go). Without ports a number is taken as is
// and a name cannot be resolved.
func sectionPort(section string, ports []corev1.ContainerPort) (uint32, bool) {
	for _, p := range ports {
		if p.ContainerPort <= 0 {
			continue
		}
		if p.Name != "" && p.Name == section {
			return uint32(p.ContainerPort), true
		}
		if p.Name == "" && strconv.Itoa(int(p.ContainerPort)) == section {
			return uint32(p.ContainerPort), true
		}
	}
	if ports != nil {
		return 0, false
	}
	n, err := strconv.Atoi(section)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return uint32(n), true
}

// proxyTypeOK is isSupportedProxyType for a sidecar (matchers/dataplane.go): no proxyTypes, or
// Sidecar among them.
func proxyTypeOK(types []string) bool {
	return len(types) == 0 || slices.Contains(types, proxyTypeSidecar)
}

// tagsMatch is TagSelector.Matches (api/mesh/v1alpha1/dataplane_helpers.go): every selector tag
// must be present, with the same value or the selector value "*".
func tagsMatch(selector, tags map[string]string) bool {
	for k, v := range selector {
		if got, ok := tags[k]; !ok || (v != got && v != "*") {
			return false
		}
	}
	return true
}

// subsetOf reports whether every key of selector is in labels with the same value.
func subsetOf(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
