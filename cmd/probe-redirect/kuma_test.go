package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
)

// TestKumaDemo is the demo's Kuma variant (hack/demo/kuma): nginx's probe breaks in a STRICT Mesh,
// and the demo's policy fixes it with Kuma's application probe proxy.
func TestKumaDemo(t *testing.T) {
	t.Chdir("../..")
	g := NewWithT(t)
	out, code := run(t, "", "analyze", "-f", "hack/demo/kuma/")
	g.Expect(code).To(Equal(exitFindings), out)
	g.Expect(out).To(MatchRegexp(`shop\s+Deployment/nginx\s+nginx\s+Readiness\s+HTTP :80/index.html\s+Kuma\s+STRICT\s+WillBreak\s+-\s+STRICT mTLS on port 80 rejects the kubelet`))

	out, code = run(t, "", "analyze", "-f", "hack/demo/kuma/", "-f", "hack/demo/fix/policy.yaml", "-o", "json")
	g.Expect(code).To(Equal(exitOK), out)
	var report struct {
		Workloads []struct {
			Name, Mesh, Verdict, MTLSMode string
			Probes                        []struct{ Rewritten string }
		}
	}
	g.Expect(json.Unmarshal([]byte(out), &report)).To(Succeed())
	g.Expect(report.Workloads).To(HaveLen(1))
	g.Expect(report.Workloads[0].Mesh).To(Equal("Kuma"))
	g.Expect(report.Workloads[0].Verdict).To(Equal("FixedByPolicy"))
	g.Expect(report.Workloads[0].MTLSMode).To(Equal("STRICT"))
	g.Expect(report.Workloads[0].Probes[0].Rewritten).To(Equal("HTTP :9001/80/index.html"))
}

// TestKumaContext reads the Mesh from --context-file, and Kuma's system namespace from its flag.
func TestKumaContext(t *testing.T) {
	t.Chdir("../..")
	g := NewWithT(t)
	shop, err := os.ReadFile("hack/demo/kuma/shop.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	_, deployment, found := strings.Cut(string(shop), "---\napiVersion: apps/v1\n")
	g.Expect(found).To(BeTrue())
	deployment = "apiVersion: apps/v1\n" + deployment

	out, code := run(t, deployment, "analyze", "-f", "-", "-n", "shop", "--context-file", "hack/demo/kuma/shop.yaml")
	g.Expect(code).To(Equal(exitFindings), out)
	g.Expect(out).To(MatchRegexp(`Deployment/nginx\s+nginx\s+Readiness\s+HTTP :80/index.html\s+Kuma\s+STRICT\s+WillBreak`), "the context file's Mesh")

	relax := filepath.Join(t.TempDir(), "relax.yaml")
	g.Expect(os.WriteFile(relax, []byte(`apiVersion: kuma.io/v1alpha1
kind: MeshTLS
metadata: {name: relax, namespace: mesh-system}
spec: {targetRef: {kind: Mesh}, rules: [{default: {mode: Permissive}}]}
---
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: broken}
spec: {mtls: {enabledBackend: nope}}
`), 0o600)).To(Succeed())
	args := []string{"analyze", "-f", "-", "-n", "shop", "--context-file", "hack/demo/kuma/shop.yaml", "--context-file", relax}
	out, code = run(t, deployment, args...)
	g.Expect(code).To(Equal(exitFindings), out)
	g.Expect(out).To(MatchRegexp(`Kuma\s+STRICT\s+WillBreak`), "a MeshTLS outside kuma-system applies to its own namespace only")
	g.Expect(out).To(ContainSubstring(`kuma.io/v1alpha1 Mesh/broken (cannot be read`), "a context Mesh Kuma would refuse is named")

	out, code = run(t, deployment, append(args, "--kuma-system-namespace", "mesh-system")...)
	g.Expect(code).To(Equal(exitOK), out)
	g.Expect(out).To(MatchRegexp(`Kuma\s+PERMISSIVE\s+NotNeeded`))
}

// TestReadClusterKuma reads Kuma's Meshes and MeshTLS policies when the cluster serves them, and
// nothing of theirs when it does not.
func TestReadClusterKuma(t *testing.T) {
	ctx := context.Background()
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	// The fake client adds the unstructured kinds it lists to its scheme: give it its own, not
	// analyze.Scheme, which must keep not knowing Kuma's kinds.
	scheme := func(g Gomega) *runtime.Scheme {
		s := runtime.NewScheme()
		g.Expect(clientgoscheme.AddToScheme(s)).To(Succeed())
		g.Expect(securityv1.AddToScheme(s)).To(Succeed())
		g.Expect(v1alpha1.AddToScheme(s)).To(Succeed())
		return s
	}

	t.Run("not served", func(t *testing.T) {
		g := NewWithT(t)
		c := fake.NewClientBuilder().WithScheme(scheme(g)).WithObjects(namespace).WithInterceptorFuncs(interceptor.Funcs{
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				if gvk := list.GetObjectKind().GroupVersionKind(); gvk.Group == analyze.KumaGroupVersion.Group {
					return &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}}
				}
				return c.List(ctx, list, opts...)
			}}).Build()
		objs, err := readClusterWith(ctx, c)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(objs.Namespaces).To(HaveLen(1))
		g.Expect(objs.KumaMeshes).To(BeEmpty())
		g.Expect(objs.KumaMeshTLSes).To(BeEmpty())
	})
	t.Run("served", func(t *testing.T) {
		g := NewWithT(t)
		kuma := func(kind, namespace, name string, spec map[string]any) client.Object {
			u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
			u.SetGroupVersionKind(analyze.KumaGroupVersion.WithKind(kind))
			u.SetNamespace(namespace)
			u.SetName(name)
			return u
		}
		c := fake.NewClientBuilder().WithScheme(scheme(g)).WithObjects(namespace,
			kuma("Mesh", "", "default", map[string]any{"mtls": map[string]any{"enabledBackend": "ca-1",
				"backends": []any{map[string]any{"name": "ca-1", "type": "builtin", "mode": "PERMISSIVE"}}}}),
			kuma("Mesh", "", "broken", map[string]any{"mtls": map[string]any{"enabledBackend": "nope"}}),
			kuma("MeshTLS", "shop", "strict", map[string]any{"targetRef": map[string]any{"kind": "Mesh"},
				"rules": []any{map[string]any{"default": map[string]any{"mode": "Strict"}}}}),
		).Build()
		objs, err := readClusterWith(ctx, c)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(objs.KumaMeshes).To(Equal([]kumamesh.Mesh{{Name: "default", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSPermissive}}))
		g.Expect(objs.KumaMeshTLSes).To(ConsistOf(And(HaveField("Namespace", "shop"), HaveField("Name", "strict"), HaveField("Mode", v1alpha1.MTLSStrict))))
		g.Expect(objs.Ignored).To(ConsistOf(And(HaveField("Kind", "Mesh"), HaveField("Name", "broken"), HaveField("Why", ContainSubstring("cannot be read")))))
	})
}
