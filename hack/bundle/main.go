// Command bundle renders the operator's OLM bundle (format registry+v1) without operator-sdk:
//
//	go run ./hack/bundle --kustomize bin/kustomize --version 0.1.0 \
//	    --image ghcr.io/proberedirect/probe-redirect-operator:v0.1.0 --out bundle
//
// It builds config/default and config/samples with kustomize, fills the hand-written CSV base
// (config/manifests/bases) with the manager Deployment, its RBAC, the image and the examples, and
// writes <out>/manifests, <out>/metadata/annotations.yaml and bundle.Dockerfile next to <out>.
// The output depends only on its inputs (no timestamps), so test/olm can check it is up to date.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/hack/internal/manifests"
)

// managerContainer is the container of the manager Deployment whose image --image sets.
const managerContainer = "manager"

// supportedKinds are the kinds OLM accepts in a bundle's manifests/ besides the CSV and CRDs
// (operator-registry pkg/lib/bundle/supported_resources.go).
var supportedKinds = []string{
	"Secret", "ConfigMap", "Service", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
	"ClusterRoleBinding", "PrometheusRule", "ServiceMonitor", "PodMonitor", "PodDisruptionBudget",
	"PriorityClass", "VerticalPodAutoscaler", "NetworkPolicy", "ConsoleYAMLSample",
	"ConsoleQuickStart", "ConsoleCLIDownload", "ConsoleLink", "ConsolePlugin",
}

type options struct {
	kustomize      string
	version        string
	image          string
	out            string
	dockerfile     string
	pkg            string
	channels       string
	defaultChannel string
}

func main() {
	var o options
	flag.StringVar(&o.kustomize, "kustomize", "bin/kustomize", "kustomize binary")
	flag.StringVar(&o.version, "version", "", "operator version, semver without a leading v (required)")
	flag.StringVar(&o.image, "image", "", "manager image reference (required)")
	flag.StringVar(&o.out, "out", "bundle", "bundle directory; manifests/ and metadata/ in it are replaced")
	flag.StringVar(&o.dockerfile, "dockerfile", "", "bundle Dockerfile (default: bundle.Dockerfile next to --out)")
	flag.StringVar(&o.pkg, "package", "probe-redirect-operator", "OLM package name")
	// Channel names follow OLM's convention (candidate, fast, stable, optionally with a suffix such
	// as -v1), which operator-framework's good-practices validator checks.
	flag.StringVar(&o.channels, "channels", "candidate", "comma-separated channels")
	flag.StringVar(&o.defaultChannel, "default-channel", "candidate", "default channel")
	flag.Parse()
	if o.dockerfile == "" {
		o.dockerfile = filepath.Join(filepath.Dir(filepath.Clean(o.out)), "bundle.Dockerfile")
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if _, err := version.ParseSemantic(o.version); err != nil || strings.HasPrefix(o.version, "v") {
		return fmt.Errorf("--version %q must be a semantic version such as 0.1.0", o.version)
	}
	if o.image == "" {
		return errors.New("--image is required")
	}
	install, err := manifests.KustomizeBuild(o.kustomize, "config/default")
	if err != nil {
		return err
	}
	samples, err := manifests.KustomizeBuild(o.kustomize, "config/samples")
	if err != nil {
		return err
	}
	base, err := manifests.ReadObject(filepath.Join("config", "manifests", "bases", o.pkg+".clusterserviceversion.yaml"))
	if err != nil {
		return fmt.Errorf("CSV base: %w", err)
	}
	files, err := render(base, install, samples, o)
	if err != nil {
		return err
	}
	copyFrom, err := filepath.Rel(filepath.Dir(o.dockerfile), o.out)
	if err != nil {
		return err
	}
	for _, dir := range []string{"manifests", "metadata"} {
		if err := os.RemoveAll(filepath.Join(o.out, dir)); err != nil {
			return err
		}
	}
	if err := manifests.WriteFiles(o.out, files); err != nil {
		return err
	}
	return os.WriteFile(o.dockerfile, dockerfile(bundleAnnotations(o), filepath.ToSlash(copyFrom)), 0o644)
}

// render returns the bundle's files by path relative to the bundle directory.
func render(base *unstructured.Unstructured, install, samples []*unstructured.Unstructured, o options) (map[string][]byte, error) {
	csv, crds, others, err := assemble(base, install, samples, o)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	add := func(name string, obj any) error {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		if _, dup := files[name]; dup {
			return fmt.Errorf("two manifests would be written to %s", name)
		}
		files[name] = data
		return nil
	}
	if err := add("manifests/"+o.pkg+".clusterserviceversion.yaml", csv.Object); err != nil {
		return nil, err
	}
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		if err := add(fmt.Sprintf("manifests/%s_%s.yaml", group, plural), crd.Object); err != nil {
			return nil, err
		}
	}
	for _, obj := range others {
		if err := add("manifests/"+manifestFileName(obj), obj.Object); err != nil {
			return nil, err
		}
	}
	if err := add("metadata/annotations.yaml", map[string]any{"annotations": bundleAnnotations(o)}); err != nil {
		return nil, err
	}
	return files, nil
}

// manifestFileName names a manifest the way operator-sdk does: <name>_<group>_<version>_<kind>.yaml.
func manifestFileName(obj *unstructured.Unstructured) string {
	gvk := obj.GroupVersionKind()
	parts := []string{obj.GetName()}
	if gvk.Group != "" {
		parts = append(parts, gvk.Group)
	}
	parts = append(parts, gvk.Version, strings.ToLower(gvk.Kind))
	return strings.Join(parts, "_") + ".yaml"
}

// assemble fills the CSV base and returns it with the CRDs and the other objects that ship as
// plain manifests. The manager Deployment, its ServiceAccount and the (Cluster)Roles bound to
// that ServiceAccount go into the CSV's install strategy; OLM creates them from there.
func assemble(base *unstructured.Unstructured, install, samples []*unstructured.Unstructured, o options) (
	csv *unstructured.Unstructured, crds, others []*unstructured.Unstructured, err error) {
	var deployments, serviceAccounts, bindings []*unstructured.Unstructured
	roles := map[string]*unstructured.Unstructured{} // by "Kind/name"
	var roleKeys []string
	for _, obj := range install {
		switch kind := obj.GetKind(); kind {
		case "Namespace":
			// OLM installs into the namespace the user picks.
		case "CustomResourceDefinition":
			crds = append(crds, obj)
		case "Deployment":
			deployments = append(deployments, obj)
		case "ServiceAccount":
			serviceAccounts = append(serviceAccounts, obj)
		case "Role", "ClusterRole":
			key := kind + "/" + obj.GetName()
			roles[key] = obj
			roleKeys = append(roleKeys, key)
		case "RoleBinding", "ClusterRoleBinding":
			bindings = append(bindings, obj)
		default:
			if !slices.Contains(supportedKinds, kind) {
				return nil, nil, nil, fmt.Errorf("config/default renders a %s (%s), which an OLM bundle cannot carry", kind, obj.GetName())
			}
			others = append(others, obj)
		}
	}
	if len(deployments) != 1 {
		return nil, nil, nil, fmt.Errorf("config/default must render exactly one Deployment, got %d", len(deployments))
	}
	deployment := deployments[0].DeepCopy()
	sa, _, _ := unstructured.NestedString(deployment.Object, "spec", "template", "spec", "serviceAccountName")
	if sa == "" {
		return nil, nil, nil, fmt.Errorf("deployment %s sets no serviceAccountName", deployment.GetName())
	}
	foundSA := false
	for _, obj := range serviceAccounts {
		if obj.GetName() == sa {
			foundSA = true // OLM creates it for the CSV's permissions.
		} else {
			others = append(others, obj)
		}
	}
	if !foundSA {
		return nil, nil, nil, fmt.Errorf("config/default renders no ServiceAccount %s for Deployment %s", sa, deployment.GetName())
	}

	// Roles bound to the manager's ServiceAccount become CSV permissions; their bindings go.
	clusterBound, namespaceBound := map[string]bool{}, map[string]bool{}
	for _, b := range bindings {
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		for _, s := range subjects {
			subject, _ := s.(map[string]any)
			if subject["kind"] != "ServiceAccount" || subject["name"] != sa {
				return nil, nil, nil, fmt.Errorf("%s %s binds a subject other than ServiceAccount %s, which the bundle cannot express", b.GetKind(), b.GetName(), sa)
			}
		}
		refKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		refName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		key := refKind + "/" + refName
		if roles[key] == nil {
			return nil, nil, nil, fmt.Errorf("%s %s refers to %s, which config/default does not render", b.GetKind(), b.GetName(), key)
		}
		if b.GetKind() == "ClusterRoleBinding" {
			clusterBound[key] = true
		} else {
			namespaceBound[key] = true
		}
	}
	for _, key := range roleKeys {
		if !clusterBound[key] && !namespaceBound[key] {
			others = append(others, roles[key])
		}
	}
	permissions := func(bound map[string]bool) ([]any, error) {
		if len(bound) == 0 {
			return nil, nil
		}
		var rules []any
		for _, key := range slices.Sorted(maps.Keys(bound)) {
			r, _, err := unstructured.NestedSlice(roles[key].Object, "rules")
			if err != nil {
				return nil, err
			}
			rules = append(rules, r...)
		}
		return []any{map[string]any{"serviceAccountName": sa, "rules": rules}}, nil
	}
	clusterPermissions, err := permissions(clusterBound)
	if err != nil {
		return nil, nil, nil, err
	}
	namespacePermissions, err := permissions(namespaceBound)
	if err != nil {
		return nil, nil, nil, err
	}
	clusterPermissions, namespacePermissions = scopePermissions(clusterPermissions, namespacePermissions)

	// The manager Deployment, with the requested image.
	containers, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
	setImage := false
	for _, c := range containers {
		if container, _ := c.(map[string]any); container["name"] == managerContainer {
			container["image"] = o.image
			setImage = true
		}
	}
	if !setImage {
		return nil, nil, nil, fmt.Errorf("deployment %s has no container named %q", deployment.GetName(), managerContainer)
	}
	if err := unstructured.SetNestedSlice(deployment.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return nil, nil, nil, err
	}
	spec, _, _ := unstructured.NestedMap(deployment.Object, "spec")
	deploymentEntry := map[string]any{"name": deployment.GetName(), "spec": spec}
	if labels := deployment.GetLabels(); len(labels) > 0 {
		l := map[string]any{}
		for k, v := range labels {
			l[k] = v
		}
		deploymentEntry["label"] = l
	}
	strategy := map[string]any{"deployments": []any{deploymentEntry}}
	if clusterPermissions != nil {
		strategy["clusterPermissions"] = clusterPermissions
	}
	if namespacePermissions != nil {
		strategy["permissions"] = namespacePermissions
	}

	if err := checkOwnedCRDs(base, crds); err != nil {
		return nil, nil, nil, err
	}
	examples, err := almExamples(samples)
	if err != nil {
		return nil, nil, nil, err
	}

	csv = base.DeepCopy()
	csv.SetName(o.pkg + ".v" + o.version)
	annotations := csv.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations["alm-examples"] = examples
	annotations["containerImage"] = o.image
	csv.SetAnnotations(annotations)
	for _, set := range []struct {
		value any
		path  []string
	}{
		{o.version, []string{"spec", "version"}},
		{"deployment", []string{"spec", "install", "strategy"}},
		{strategy, []string{"spec", "install", "spec"}},
		{[]any{map[string]any{"name": managerContainer, "image": o.image}}, []string{"spec", "relatedImages"}},
	} {
		if err := unstructured.SetNestedField(csv.Object, set.value, set.path...); err != nil {
			return nil, nil, nil, err
		}
	}

	for i, obj := range others {
		if obj.GetNamespace() != "" {
			others[i] = obj.DeepCopy()
			others[i].SetNamespace("") // OLM creates namespaced manifests in the install namespace.
		}
	}
	return csv, crds, others, nil
}

// checkOwnedCRDs makes sure the CSV base lists every version of every CRD as owned, and nothing else.
func checkOwnedCRDs(base *unstructured.Unstructured, crds []*unstructured.Unstructured) error {
	owned, _, _ := unstructured.NestedSlice(base.Object, "spec", "customresourcedefinitions", "owned")
	listed := map[string]bool{}
	for _, o := range owned {
		m, _ := o.(map[string]any)
		listed[fmt.Sprintf("%v/%v/%v", m["name"], m["version"], m["kind"])] = true
	}
	for _, crd := range crds {
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			name, _ := v.(map[string]any)["name"].(string)
			key := fmt.Sprintf("%s/%s/%s", crd.GetName(), name, kind)
			if !listed[key] {
				return fmt.Errorf("the CSV base does not list %s (name/version/kind) under spec.customresourcedefinitions.owned", key)
			}
			delete(listed, key)
		}
	}
	if len(listed) > 0 {
		return fmt.Errorf("the CSV base owns %v, which config/default does not render", slices.Sorted(maps.Keys(listed)))
	}
	return nil
}

// almExamples is the alm-examples annotation: the samples as an indented JSON array, without
// namespaces (the console creates them in the namespace the user is looking at).
func almExamples(samples []*unstructured.Unstructured) (string, error) {
	list := make([]any, 0, len(samples))
	for _, s := range samples {
		s = s.DeepCopy()
		s.SetNamespace("")
		list = append(list, s.Object)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	return string(data), err
}

// bundleAnnotations are metadata/annotations.yaml's keys, repeated as bundle.Dockerfile LABELs.
func bundleAnnotations(o options) map[string]string {
	a := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1": "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":  "metadata/",
		"operators.operatorframework.io.bundle.package.v1":   o.pkg,
		"operators.operatorframework.io.bundle.channels.v1":  o.channels,
	}
	if o.defaultChannel != "" {
		a["operators.operatorframework.io.bundle.channel.default.v1"] = o.defaultChannel
	}
	return a
}

// dockerfile builds the bundle image from the directory copyFrom (relative to the build context).
func dockerfile(labels map[string]string, copyFrom string) []byte {
	var b strings.Builder
	b.WriteString("# Code generated by `make bundle` (go run ./hack/bundle). DO NOT EDIT.\n")
	b.WriteString("FROM scratch\n\n# The same keys as metadata/annotations.yaml.\n")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&b, "LABEL %s=%s\n", k, labels[k])
	}
	fmt.Fprintf(&b, "\nCOPY %s/manifests /manifests/\nCOPY %s/metadata /metadata/\n", copyFrom, copyFrom)
	return []byte(b.String())
}

// namespacedResources are the namespaced resources the operator's ClusterRoles name, by API group.
// Their rules become the CSV's permissions: OLM grants them as Roles in each target namespace
// (OwnNamespace, SingleNamespace, MultiNamespace) and cluster-wide in AllNamespaces mode (OLM's
// operator group RBAC: the operator namespace's Roles are copied to the target namespaces, or
// turned into ClusterRoles when the targets include every namespace).
var namespacedResources = map[string][]string{
	"":                      {"pods", "events", "configmaps"},
	"apps":                  {"deployments", "statefulsets", "daemonsets"},
	"events.k8s.io":         {"events"},
	"mesh.proberedirect.io": {"proberedirectpolicies", "proberedirectpolicies/status", "proberedirectpolicies/finalizers"},
	"security.istio.io":     {"peerauthentications"},
	"kuma.io":               {"meshtlses"},
	"coordination.k8s.io":   {"leases"},
}

// rootNamespaceReads are the namespaced resources the operator also reads outside its target
// namespaces, in Istio's root namespace (istiod's Deployment for the Istio version, the mesh-wide
// PeerAuthentication): OLM can grant that only cluster-wide, so their read verbs stay in
// clusterPermissions.
var rootNamespaceReads = map[string][]string{
	"apps":              {"deployments"},
	"security.istio.io": {"peerauthentications"},
	// Kuma's mesh-wide MeshTLS policies, in Kuma's system namespace.
	"kuma.io": {"meshtlses"},
}

var readVerbs = []string{"get", "list", "watch"}

// scopePermissions moves the namespaced rules of the cluster permissions into the namespaced
// permissions, keeping in the cluster permissions the cluster-scoped resources and the read verbs
// of rootNamespaceReads. Each argument and result is nil or one {serviceAccountName, rules}.
func scopePermissions(cluster, namespaced []any) (clusterOut, namespacedOut []any) {
	if len(cluster) == 0 {
		return cluster, namespaced
	}
	entry, _ := cluster[0].(map[string]any)
	rules, _ := entry["rules"].([]any)
	var keep, move []any
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		groups := stringsOf(rule["apiGroups"])
		resources := stringsOf(rule["resources"])
		verbs := stringsOf(rule["verbs"])
		if len(groups) != 1 || len(stringsOf(rule["resourceNames"])) > 0 || len(stringsOf(rule["nonResourceURLs"])) > 0 {
			keep = append(keep, rule) // not ours to split
			continue
		}
		group := groups[0]
		var clusterScoped, namespacedNames, readAcross []string
		for _, res := range resources {
			switch {
			case !slices.Contains(namespacedResources[group], res):
				clusterScoped = append(clusterScoped, res)
			default:
				namespacedNames = append(namespacedNames, res)
				if slices.Contains(rootNamespaceReads[group], res) {
					readAcross = append(readAcross, res)
				}
			}
		}
		if len(clusterScoped) > 0 {
			keep = append(keep, withResources(rule, clusterScoped, verbs))
		}
		if len(namespacedNames) > 0 {
			move = append(move, withResources(rule, namespacedNames, verbs))
		}
		if reads := intersect(verbs, readVerbs); len(readAcross) > 0 && len(reads) > 0 {
			keep = append(keep, withResources(rule, readAcross, reads))
		}
	}
	if len(move) == 0 {
		return cluster, namespaced
	}
	sa := entry["serviceAccountName"]
	if len(namespaced) == 0 {
		namespaced = []any{map[string]any{"serviceAccountName": sa, "rules": []any{}}}
	}
	nsEntry, _ := namespaced[0].(map[string]any)
	nsRules, _ := nsEntry["rules"].([]any)
	nsEntry["rules"] = append(move, nsRules...)
	if len(keep) == 0 {
		return nil, namespaced
	}
	return []any{map[string]any{"serviceAccountName": sa, "rules": keep}}, namespaced
}

func withResources(rule map[string]any, resources, verbs []string) map[string]any {
	out := map[string]any{}
	for k, v := range rule {
		out[k] = v
	}
	out["resources"] = anys(resources)
	out["verbs"] = anys(verbs)
	return out
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
