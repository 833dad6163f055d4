package main

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/hack/internal/manifests"
)

var testOptions = options{version: "1.2.3", image: "example.com/op:v1.2.3", pkg: "op", channels: "alpha", defaultChannel: "alpha"}

func objects(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Decode([]byte(docs))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return objs
}

const testBase = `
apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata: {name: op.v0.0.0, annotations: {capabilities: Basic Install}}
spec:
  displayName: Op
  install: {strategy: deployment, spec: {deployments: null}}
  customresourcedefinitions:
    owned: [{name: things.example.com, version: v1, kind: Thing}]
`

const testCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec: {group: example.com, names: {kind: Thing, plural: things}, versions: [{name: v1}]}
`

const testInstall = `
apiVersion: v1
kind: Namespace
metadata: {name: op-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: op-sa, namespace: op-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: op-manager, namespace: op-system, labels: {app: op}}
spec:
  template:
    spec:
      serviceAccountName: op-sa
      containers: [{name: manager, image: controller:latest}, {name: helper, image: helper:1}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op-manager-role}
rules: [{apiGroups: [apps], resources: [deployments], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op-auth-role}
rules: [{apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op-reader}
rules: [{nonResourceURLs: [/metrics], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: op-leader, namespace: op-system}
rules: [{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op-manager}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-manager-role}
subjects: [{kind: ServiceAccount, name: op-sa, namespace: op-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op-auth}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-auth-role}
subjects: [{kind: ServiceAccount, name: op-sa, namespace: op-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: op-leader, namespace: op-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: op-leader}
subjects: [{kind: ServiceAccount, name: op-sa, namespace: op-system}]
---
apiVersion: v1
kind: Service
metadata: {name: op-metrics, namespace: op-system}
spec: {ports: [{port: 8443}]}
`

const testSamples = `
apiVersion: example.com/v1
kind: Thing
metadata: {name: a, namespace: demo}
spec: {size: 1}
`

func base(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	NewWithT(t).Expect(yaml.Unmarshal([]byte(testBase), &u.Object)).To(Succeed())
	return u
}

func TestAssembleMovesTheManagerIntoTheCSV(t *testing.T) {
	g := NewWithT(t)
	csv, crds, others, err := assemble(base(t), objects(t, testCRD+"---"+testInstall), objects(t, testSamples), testOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(crds).To(HaveLen(1))

	var names []string
	for _, o := range others {
		names = append(names, o.GetKind()+"/"+o.GetName())
		g.Expect(o.GetNamespace()).To(BeEmpty())
	}
	g.Expect(names).To(ConsistOf("ClusterRole/op-reader", "Service/op-metrics"), "unbound roles and the Service ship as manifests")

	g.Expect(csv.GetName()).To(Equal("op.v1.2.3"))
	out, err := yaml.Marshal(csv.Object)
	g.Expect(err).NotTo(HaveOccurred())
	var got struct {
		Metadata struct{ Annotations map[string]string }
		Spec     struct {
			Version       string
			RelatedImages []map[string]string `json:"relatedImages"`
			Install       struct {
				Strategy string
				Spec     struct {
					Deployments []struct {
						Name  string
						Label map[string]string
						Spec  struct {
							Template struct {
								Spec struct {
									Containers []struct{ Name, Image string }
								}
							}
						}
					}
					ClusterPermissions []struct {
						ServiceAccountName string `json:"serviceAccountName"`
						Rules              []struct{ Resources []string }
					} `json:"clusterPermissions"`
					Permissions []struct {
						ServiceAccountName string `json:"serviceAccountName"`
						Rules              []struct{ Resources []string }
					}
				}
			}
		}
	}
	g.Expect(yaml.Unmarshal(out, &got)).To(Succeed())
	g.Expect(got.Spec.Version).To(Equal("1.2.3"))
	g.Expect(got.Spec.RelatedImages).To(Equal([]map[string]string{{"name": "manager", "image": testOptions.image}}))
	g.Expect(got.Metadata.Annotations).To(HaveKeyWithValue("containerImage", testOptions.image))
	g.Expect(got.Metadata.Annotations).To(HaveKeyWithValue("capabilities", "Basic Install"))
	g.Expect(got.Metadata.Annotations["alm-examples"]).To(MatchJSON(`[{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"a"},"spec":{"size":1}}]`))

	g.Expect(got.Spec.Install.Strategy).To(Equal("deployment"))
	d := got.Spec.Install.Spec.Deployments
	g.Expect(d).To(HaveLen(1))
	g.Expect(d[0].Name).To(Equal("op-manager"))
	g.Expect(d[0].Label).To(Equal(map[string]string{"app": "op"}))
	g.Expect(d[0].Spec.Template.Spec.Containers).To(Equal([]struct{ Name, Image string }{
		{"manager", testOptions.image}, {"helper", "helper:1"}}), "only the manager's image changes")

	cp := got.Spec.Install.Spec.ClusterPermissions
	g.Expect(cp).To(HaveLen(1))
	g.Expect(cp[0].ServiceAccountName).To(Equal("op-sa"))
	// Sorted by role name: op-auth-role, then op-manager-role. Deployments are namespaced, but
	// their reads stay cluster-wide (istiod's Deployment in the root namespace).
	g.Expect(cp[0].Rules).To(HaveLen(2))
	g.Expect(cp[0].Rules[0].Resources).To(Equal([]string{"tokenreviews"}))
	g.Expect(cp[0].Rules[1].Resources).To(Equal([]string{"deployments"}))
	// The namespaced rules move to permissions, which OLM grants per target namespace.
	p := got.Spec.Install.Spec.Permissions
	g.Expect(p).To(HaveLen(1))
	g.Expect(p[0].ServiceAccountName).To(Equal("op-sa"))
	g.Expect(p[0].Rules).To(HaveLen(2))
	g.Expect(p[0].Rules[0].Resources).To(Equal([]string{"deployments"}))
	g.Expect(p[0].Rules[1].Resources).To(Equal([]string{"leases"}))
}

func TestAssembleRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		install, base, want string
	}{
		"a kind OLM cannot carry": {
			install: testCRD + "---" + testInstall + "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n",
			want:    "Job",
		},
		"a CRD the base does not own": {
			install: strings.Replace(testCRD, "versions: [{name: v1}]", "versions: [{name: v1}, {name: v2}]", 1) + "---" + testInstall,
			want:    "things.example.com/v2/Thing",
		},
		"an owned CRD that is not rendered": {
			install: testInstall,
			want:    "things.example.com/v1/Thing",
		},
		"a binding to someone else": {
			install: testCRD + "---" + strings.Replace(testInstall, "subjects: [{kind: ServiceAccount, name: op-sa, namespace: op-system}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: op-auth}",
				"subjects: [{kind: Group, name: devs}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: op-auth}", 1),
			want: "op-manager binds a subject other than",
		},
		"no manager container": {
			install: testCRD + "---" + strings.Replace(testInstall, "name: manager,", "name: main,", 1),
			want:    `no container named "manager"`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := assemble(base(t), objects(t, tc.install), objects(t, testSamples), testOptions)
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestRenderNamesFilesAndWritesAnnotations(t *testing.T) {
	g := NewWithT(t)
	files, err := render(base(t), objects(t, testCRD+"---"+testInstall), objects(t, testSamples), testOptions)
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for name := range files {
		names = append(names, name)
	}
	g.Expect(names).To(ConsistOf(
		"manifests/op.clusterserviceversion.yaml",
		"manifests/example.com_things.yaml",
		"manifests/op-reader_rbac.authorization.k8s.io_v1_clusterrole.yaml",
		"manifests/op-metrics_v1_service.yaml",
		"metadata/annotations.yaml",
	))
	g.Expect(string(files["metadata/annotations.yaml"])).To(Equal(`annotations:
  operators.operatorframework.io.bundle.channel.default.v1: alpha
  operators.operatorframework.io.bundle.channels.v1: alpha
  operators.operatorframework.io.bundle.manifests.v1: manifests/
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.metadata.v1: metadata/
  operators.operatorframework.io.bundle.package.v1: op
`))

	again, err := render(base(t), objects(t, testCRD+"---"+testInstall), objects(t, testSamples), testOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(files), "rendering is deterministic")
}

func TestDockerfileRepeatsTheAnnotations(t *testing.T) {
	df := string(dockerfile(bundleAnnotations(testOptions), "out/bundle"))
	g := NewWithT(t)
	g.Expect(df).To(ContainSubstring("FROM scratch\n"))
	g.Expect(df).To(ContainSubstring("LABEL operators.operatorframework.io.bundle.package.v1=op\n"))
	g.Expect(strings.Count(df, "LABEL ")).To(Equal(len(bundleAnnotations(testOptions))))
	g.Expect(df).To(HaveSuffix("COPY out/bundle/manifests /manifests/\nCOPY out/bundle/metadata /metadata/\n"))
}
