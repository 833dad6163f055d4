package olm

import (
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

var (
	// installModeTypes are OLM's install modes. operator-framework/api's CSV validator checks
	// neither the types nor, although it means to, duplicates; OLM's CSV schema does not either.
	installModeTypes = []string{"OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces"}
	// bundleKinds may appear in manifests/ (operator-registry pkg/lib/bundle/supported_resources.go;
	// operator-sdk checks this with operator-registry's code, not operator-framework/api's).
	bundleKinds = []string{"ClusterServiceVersion", "CustomResourceDefinition", "Secret", "ConfigMap",
		"Service", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
		"PrometheusRule", "ServiceMonitor", "PodMonitor", "PodDisruptionBudget", "PriorityClass",
		"VerticalPodAutoscaler", "NetworkPolicy", "ConsoleYAMLSample", "ConsoleQuickStart",
		"ConsoleCLIDownload", "ConsoleLink", "ConsolePlugin"}
)

// TestCSVIsComplete checks what operator-framework/api's validators do not (test/olmvalidate
// runs those, `make test-olm-validate`): the checks of operator-sdk's scorecard olm tests, what
// `operator-sdk bundle validate` checks with operator-registry's code, and this project's own
// requirements, some of them stricter versions of the validators' checks.
func TestCSVIsComplete(t *testing.T) {
	c, _ := readCSV(t)
	manifests := readManifests(t)

	t.Run("identity", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(c.Metadata.Name).To(Equal(packageName+".v"+c.Spec.Version), "metadata.name is <package>.v<version>")
		g.Expect(c.Spec.Description).NotTo(BeEmpty())
		g.Expect(c.Spec.Keywords).NotTo(BeEmpty())
		g.Expect(c.Spec.Maturity).NotTo(BeEmpty())
		g.Expect(c.Metadata.Annotations).NotTo(HaveKey("createdAt"), "the bundle must not change on every run")
	})

	t.Run("install modes", func(t *testing.T) {
		g := NewWithT(t)
		seen := map[string]bool{}
		for _, m := range c.Spec.InstallModes {
			g.Expect(installModeTypes).To(ContainElement(m.Type))
			g.Expect(seen).NotTo(HaveKey(m.Type), "duplicate install mode %s", m.Type)
			seen[m.Type] = m.Supported
		}
		g.Expect(seen).To(HaveKeyWithValue("AllNamespaces", true), "OLM v1 installs only AllNamespaces operators")
	})

	t.Run("minKubeVersion", func(t *testing.T) {
		g := NewWithT(t)
		v, err := version.ParseGeneric(c.Spec.MinKubeVersion)
		g.Expect(err).NotTo(HaveOccurred())
		// The CRD uses CEL validation rules (GA in 1.29) and listType=set.
		g.Expect(v.AtLeast(version.MustParseGeneric("1.29.0"))).To(BeTrue())
	})

	t.Run("owned CRDs", func(t *testing.T) {
		g := NewWithT(t)
		owned := map[string]ownedCRD{}
		for _, o := range c.Spec.CustomResourceDefinitions.Owned {
			owned[o.Name+"/"+o.Version+"/"+o.Kind] = o
			g.Expect(o.DisplayName).NotTo(BeEmpty(), o.Name)
			g.Expect(o.Resources).NotTo(BeEmpty(), "olm-crds-have-resources: %s", o.Name)
			for _, r := range o.Resources {
				g.Expect(r.Kind).NotTo(BeEmpty())
				g.Expect(r.Version).NotTo(BeEmpty())
			}
			g.Expect(o.StatusDescriptors).NotTo(BeEmpty(), "olm-status-descriptors: %s", o.Name)
		}
		// That the owned CRDs and the bundle's CRDs are the same is operator-framework/api's bundle
		// validator's check; here, the descriptors of each.
		for _, crd := range crdsIn(manifests) {
			kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
			for _, v := range crdVersions(crd) {
				key := crd.GetName() + "/" + v + "/" + kind
				o, ok := owned[key]
				if !ok {
					continue
				}
				schema := crdSchema(t, crd, v)
				for _, d := range o.SpecDescriptors {
					g.Expect(schemaHas(schema, "spec", d.Path)).To(BeTrue(), "specDescriptor %s exists in the CRD", d.Path)
				}
				for _, d := range o.StatusDescriptors {
					g.Expect(schemaHas(schema, "status", d.Path)).To(BeTrue(), "statusDescriptor %s exists in the CRD", d.Path)
				}
				// Stricter than the scorecard: every top-level spec field, set in the example or not.
				for _, field := range topLevelFields(schema, "spec") {
					g.Expect(descriptorPaths(o.SpecDescriptors)).To(ContainElement(field), "spec.%s has a specDescriptor", field)
				}
				g.Expect(descriptorPaths(o.StatusDescriptors)).To(ContainElement("conditions"))
			}
		}
	})

	t.Run("alm-examples", func(t *testing.T) {
		g := NewWithT(t)
		// That each example is of an owned API and each owned API has one is operator-framework/api's
		// CSV validator's check; here, what the scorecard checks of each.
		byGVK := map[string]ownedCRD{}
		for _, o := range c.Spec.CustomResourceDefinitions.Owned {
			_, group, _ := strings.Cut(o.Name, ".")
			byGVK[group+"/"+o.Version+"/"+o.Kind] = o
		}
		crds := crdsIn(manifests)
		for _, ex := range almExamples(t, c) {
			gvk := ex.GroupVersionKind()
			o, ok := byGVK[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind]
			if !ok {
				continue
			}
			g.Expect(ex.GetNamespace()).To(BeEmpty(), "examples carry no namespace")
			spec, found, _ := unstructured.NestedMap(ex.Object, "spec")
			g.Expect(found).To(BeTrue(), "basic-check-spec: example %s has a spec", ex.GetName())
			var schema map[string]any
			for _, crd := range crds {
				if crd.GetName() == o.Name {
					schema = crdSchema(t, crd, o.Version)
				}
			}
			for key := range spec {
				g.Expect(descriptorPaths(o.SpecDescriptors)).To(ContainElement(key), "olm-spec-descriptors: spec.%s", key)
				g.Expect(schemaHas(schema, "spec", key)).To(BeTrue(), "olm-crds-have-validation: spec.%s", key)
			}
			status, _, _ := unstructured.NestedMap(ex.Object, "status")
			for key := range status {
				g.Expect(schemaHas(schema, "status", key)).To(BeTrue(), "olm-crds-have-validation: status.%s", key)
			}
		}
	})

	// The icon's count and media type, the maintainers' names and addresses, the links' names and
	// URLs, the provider's name, and the capability level and categories when they are set, are
	// operator-framework/api's operatorhubv2, capabilities and categories validators' checks.
	t.Run("operatorhub metadata", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(c.Spec.Icon).NotTo(BeEmpty())
		icon := c.Spec.Icon[0]
		data, err := base64.StdEncoding.DecodeString(icon.Data)
		g.Expect(err).NotTo(HaveOccurred(), "icon data is base64")
		switch icon.MediaType {
		case "image/svg+xml":
			var root struct{ XMLName xml.Name }
			g.Expect(xml.Unmarshal(data, &root)).To(Succeed(), "the icon is well-formed XML")
			g.Expect(root.XMLName.Local).To(Equal("svg"))
			g.Expect(root.XMLName.Space).To(Equal("http://www.w3.org/2000/svg"))
		case "image/png":
			g.Expect(data).To(HavePrefix("\x89PNG"))
		}

		g.Expect(c.Spec.Maintainers).NotTo(BeEmpty())
		g.Expect(c.Spec.Links).NotTo(BeEmpty())
		// Stricter than the validator, which takes any URI: https with a host, the provider's too.
		for _, l := range append(slices.Clone(c.Spec.Links), c.Spec.Provider) {
			u, err := url.ParseRequestURI(l.URL)
			g.Expect(err).NotTo(HaveOccurred(), "link %s", l.Name)
			g.Expect(u.Scheme).To(Equal("https"), "link %s", l.Name)
			g.Expect(u.Host).NotTo(BeEmpty(), "link %s", l.Name)
		}
		g.Expect(c.Metadata.Annotations).To(HaveKey("capabilities"))
		g.Expect(c.Metadata.Annotations["categories"]).NotTo(BeEmpty())
		repo, err := url.ParseRequestURI(c.Metadata.Annotations["repository"])
		g.Expect(err).NotTo(HaveOccurred(), "repository annotation")
		g.Expect(repo.Host).NotTo(BeEmpty())
	})

	t.Run("images", func(t *testing.T) {
		g := NewWithT(t)
		// That each related image is a valid reference is operator-framework/api's bundle validator's check.
		g.Expect(c.Spec.RelatedImages).NotTo(BeEmpty())
		related := []string{}
		for _, ri := range c.Spec.RelatedImages {
			g.Expect(ri.Name).NotTo(BeEmpty())
			related = append(related, ri.Image)
		}
		g.Expect(related).To(ContainElement(c.Metadata.Annotations["containerImage"]))
		for _, d := range c.Spec.Install.Spec.Deployments {
			for _, ctr := range d.Spec.Template.Spec.Containers {
				g.Expect(related).To(ContainElement(ctr.Image), "container %s's image is a related image", ctr.Name)
			}
		}
	})

	t.Run("install strategy", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(c.Spec.Install.Strategy).To(Equal("deployment"))
		serviceAccounts := map[string]bool{}
		for _, d := range c.Spec.Install.Spec.Deployments {
			g.Expect(validation.IsDNS1123Subdomain(d.Name)).To(BeEmpty())
			g.Expect(d.Spec.Template.Spec.ServiceAccountName).NotTo(BeEmpty())
			serviceAccounts[d.Spec.Template.Spec.ServiceAccountName] = true
			// Stricter than good-practices, which only wants requests to be set: CPU and memory both.
			for _, ctr := range d.Spec.Template.Spec.Containers {
				g.Expect(ctr.Resources.Requests.Cpu().IsZero()).To(BeFalse(), "%s requests CPU", ctr.Name)
				g.Expect(ctr.Resources.Requests.Memory().IsZero()).To(BeFalse(), "%s requests memory", ctr.Name)
			}
		}
		perms := append(slices.Clone(c.Spec.Install.Spec.ClusterPermissions), c.Spec.Install.Spec.Permissions...)
		g.Expect(c.Spec.Install.Spec.ClusterPermissions).NotTo(BeEmpty())
		for _, p := range perms {
			g.Expect(serviceAccounts).To(HaveKey(p.ServiceAccountName), "permissions name a deployment's ServiceAccount")
			g.Expect(p.Rules).NotTo(BeEmpty())
		}
	})

	// Broader than good-practices, which looks at the CSV's permissions for the apiextensions.k8s.io
	// group only: the bundle's Roles and ClusterRoles too, and the "*" group.
	t.Run("RBAC does not create CRDs", func(t *testing.T) {
		g := NewWithT(t)
		type rule struct{ APIGroups, Resources, Verbs []string }
		var rules []rule
		for _, p := range append(slices.Clone(c.Spec.Install.Spec.ClusterPermissions), c.Spec.Install.Spec.Permissions...) {
			for _, r := range p.Rules {
				rules = append(rules, rule{r.APIGroups, r.Resources, r.Verbs})
			}
		}
		for _, obj := range manifests {
			if obj.GetKind() == "Role" || obj.GetKind() == "ClusterRole" {
				var role struct{ Rules []rule }
				data, _ := yaml.Marshal(obj.Object)
				g.Expect(yaml.Unmarshal(data, &role)).To(Succeed())
				rules = append(rules, role.Rules...)
			}
		}
		for _, r := range rules {
			grantsCRDs := (slices.Contains(r.APIGroups, "apiextensions.k8s.io") || slices.Contains(r.APIGroups, "*")) &&
				(slices.Contains(r.Resources, "customresourcedefinitions") || slices.Contains(r.Resources, "*"))
			creates := slices.Contains(r.Verbs, "create") || slices.Contains(r.Verbs, "*")
			g.Expect(grantsCRDs && creates).To(BeFalse(), "a rule creates CRDs: %+v", r)
		}
	})

	t.Run("manifests", func(t *testing.T) {
		g := NewWithT(t)
		for file, obj := range manifests {
			g.Expect(bundleKinds).To(ContainElement(obj.GetKind()), "%s: OLM accepts this kind in a bundle", file)
			g.Expect(obj.GetNamespace()).To(BeEmpty(), "%s: OLM picks the namespace", file)
		}
	})

	t.Run("annotations.yaml and bundle.Dockerfile", func(t *testing.T) {
		g := NewWithT(t)
		var meta struct {
			Annotations map[string]string `json:"annotations"`
		}
		g.Expect(yaml.UnmarshalStrict(mustRead(t, filepath.Join(bundleDir(), "metadata", "annotations.yaml")), &meta)).To(Succeed())
		a := meta.Annotations
		g.Expect(a).To(HaveKeyWithValue("operators.operatorframework.io.bundle.mediatype.v1", "registry+v1"))
		g.Expect(a).To(HaveKeyWithValue("operators.operatorframework.io.bundle.manifests.v1", "manifests/"))
		g.Expect(a).To(HaveKeyWithValue("operators.operatorframework.io.bundle.metadata.v1", "metadata/"))
		g.Expect(a).To(HaveKeyWithValue("operators.operatorframework.io.bundle.package.v1", packageName))
		channels := strings.Split(a["operators.operatorframework.io.bundle.channels.v1"], ",")
		g.Expect(channels).NotTo(ContainElement(""), "channels are non-empty")
		if def, ok := a["operators.operatorframework.io.bundle.channel.default.v1"]; ok {
			g.Expect(channels).To(ContainElement(def), "the default channel is one of the channels")
		}

		labels := map[string]string{}
		var from string
		var copies []string
		for _, line := range strings.Split(string(mustRead(t, filepath.Join(testenv.RepoRoot(), "bundle.Dockerfile"))), "\n") {
			switch fields := strings.Fields(line); {
			case len(fields) == 0 || strings.HasPrefix(fields[0], "#"):
			case fields[0] == "FROM":
				from = strings.Join(fields[1:], " ")
			case fields[0] == "LABEL":
				for _, kv := range fields[1:] {
					k, v, _ := strings.Cut(kv, "=")
					labels[k] = v
				}
			case fields[0] == "COPY":
				copies = append(copies, strings.Join(fields[1:], " "))
			default:
				t.Errorf("unexpected bundle.Dockerfile instruction: %s", line)
			}
		}
		g.Expect(from).To(Equal("scratch"))
		g.Expect(labels).To(Equal(a), "bundle.Dockerfile LABELs agree with metadata/annotations.yaml")
		g.Expect(copies).To(ConsistOf("bundle/manifests /manifests/", "bundle/metadata /metadata/"))
	})
}

func crdsIn(manifests map[string]*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	crds := map[string]*unstructured.Unstructured{}
	for file, obj := range manifests {
		if obj.GetKind() == "CustomResourceDefinition" {
			crds[file] = obj
		}
	}
	return crds
}

func crdVersions(crd *unstructured.Unstructured) []string {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var names []string
	for _, v := range versions {
		name, _ := v.(map[string]any)["name"].(string)
		names = append(names, name)
	}
	return names
}

// crdSchema is the openAPIV3Schema of one version of a CRD.
func crdSchema(t *testing.T, crd *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if m := v.(map[string]any); m["name"] == name {
			schema, found, _ := unstructured.NestedMap(m, "schema", "openAPIV3Schema")
			NewWithT(t).Expect(found).To(BeTrue())
			return schema
		}
	}
	t.Fatalf("CRD %s has no version %s", crd.GetName(), name)
	return nil
}

// schemaHas reports whether the dotted path under the top-level field exists in the schema.
func schemaHas(schema map[string]any, top, path string) bool {
	node := schema
	for _, part := range append([]string{top}, strings.Split(path, ".")...) {
		next, ok, _ := unstructured.NestedMap(node, "properties", part)
		if !ok {
			return false
		}
		node = next
	}
	return true
}

func topLevelFields(schema map[string]any, top string) []string {
	props, _, _ := unstructured.NestedMap(schema, "properties", top, "properties")
	var names []string
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func descriptorPaths(ds []descriptor) []string {
	var paths []string
	for _, d := range ds {
		paths = append(paths, d.Path)
	}
	return paths
}
