package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// kustomizeBuild renders a kustomization with the kustomize that `make kustomize` builds.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	g := NewWithT(t)
	bin := os.Getenv("KUSTOMIZE")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "kustomize")
	}
	_, err := os.Stat(bin)
	g.Expect(err).NotTo(HaveOccurred(), "kustomize is built by `make kustomize` (make test does it)")
	cmd := exec.Command(bin, "build", filepath.Join(testenv.RepoRoot(), dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	g.Expect(err).NotTo(HaveOccurred(), stderr.String())
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := decoder.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func TestInstallerRendersAHardenedManager(t *testing.T) {
	g := NewWithT(t)
	objs := kustomizeBuild(t, "config/default")
	kinds := map[string]int{}
	var deployment *appsv1.Deployment
	for _, u := range objs {
		kinds[u.GetKind()]++
		if u.GetKind() != "CustomResourceDefinition" {
			g.Expect(u.GetName()).To(HavePrefix("probe-redirect-operator-"))
		}
		if u.GetNamespace() != "" {
			g.Expect(u.GetNamespace()).To(Equal("probe-redirect-operator-system"))
		}
		if u.GetKind() == "Deployment" {
			deployment = &appsv1.Deployment{}
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, deployment)).To(Succeed())
		}
	}
	g.Expect(kinds).To(HaveKeyWithValue("CustomResourceDefinition", 1))
	g.Expect(kinds).To(HaveKeyWithValue("Deployment", 1))
	g.Expect(kinds).To(HaveKeyWithValue("Service", 1))
	g.Expect(kinds).To(HaveKeyWithValue("ServiceAccount", 1))
	g.Expect(deployment).NotTo(BeNil())

	pod := deployment.Spec.Template.Spec
	g.Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	g.Expect(string(pod.SecurityContext.SeccompProfile.Type)).To(Equal("RuntimeDefault"))
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.Args).To(ContainElements("--leader-elect", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8443"))
	g.Expect(c.Args).NotTo(ContainElement(HavePrefix("--metrics-secure=false")))
	g.Expect(c.Args).NotTo(ContainElement("--enable-http2"))
	g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(BeEquivalentTo("ALL")))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.Resources.Requests).NotTo(BeEmpty())
	g.Expect(c.Resources.Limits).NotTo(BeEmpty())
	g.Expect(c.Image).To(MatchRegexp(`^ghcr\.io/proberedirect/probe-redirect-operator:v\d+\.\d+\.\d+$`))
}

func TestOptionalOverlaysRender(t *testing.T) {
	g := NewWithT(t)
	monitoring := kustomizeBuild(t, "config/prometheus")
	kinds := []string{}
	for _, o := range monitoring {
		kinds = append(kinds, o.GetKind())
	}
	g.Expect(kinds).To(ConsistOf("ServiceMonitor", "PrometheusRule"))
	policy := kustomizeBuild(t, "config/network-policy")
	g.Expect(policy).To(HaveLen(1))
	g.Expect(policy[0].GetKind()).To(Equal("NetworkPolicy"))
	samples := kustomizeBuild(t, "config/samples")
	g.Expect(samples).NotTo(BeEmpty())
}
