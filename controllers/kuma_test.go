package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
)

// kumaObject creates a Kuma object from its manifest and deletes it when the test ends.
func kumaObject(t *testing.T, obj map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), u)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), u) })
}

// TestKumaMeshTLSChangeWakesThePolicy follows a Kuma workload through changes of Kuma's own
// objects: in a PERMISSIVE Mesh its HTTP probe needs nothing; a MeshTLS that makes it STRICT
// wakes the policy, which annotates the template with kuma.io/application-probe-proxy-port; the
// policy names the mesh and the mode.
func TestKumaMeshTLSChangeWakesThePolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	kumaObject(t, map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": map[string]any{"name": "envtest-permissive"},
		"spec": map[string]any{"mtls": map[string]any{"enabledBackend": "ca-1",
			"backends": []any{map[string]any{"name": "ca-1", "type": "builtin", "mode": "PERMISSIVE"}}}},
	})
	ns := namespace(t, map[string]string{kumamesh.SidecarInjectionLabel: "enabled", kumamesh.MeshLabel: "envtest-permissive"})
	d := createDeployment(t, ns, "api", []corev1.Container{container("app", readiness(httpGet(intstr.FromInt32(8080), "/ready")))})
	p := createPolicy(t, ns, "api", map[string]string{"app": "api"})
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveWorkloadState(v1alpha1.KindDeployment, "api", v1alpha1.WorkloadNotNeeded)(g, p)
		g.Expect(p.Status.Mesh).To(Equal("Kuma"))
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		g.Expect(workload(p, v1alpha1.KindDeployment, "api").Mesh).To(Equal(v1alpha1.MeshKuma))
	})

	kumaObject(t, map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "MeshTLS",
		"metadata": map[string]any{"name": "api-strict", "namespace": ns, "labels": map[string]any{kumamesh.MeshLabel: "envtest-permissive"}},
		"spec": map[string]any{
			"targetRef": map[string]any{"kind": "Dataplane", "labels": map[string]any{"app": "api"}},
			"from":      []any{map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"mode": "Strict"}}},
		},
	})
	g.Eventually(func(g Gomega) {
		got := &appsv1.Deployment{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
		g.Expect(got.Spec.Template.Annotations).To(HaveKeyWithValue(kumamesh.ProbeProxyPortAnnotation, "9001"))
		g.Expect(got.Spec.Template.Annotations).NotTo(HaveKey("sidecar.istio.io/rewriteAppHTTPProbers"))
	}, timeout, interval).Should(Succeed())
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(workload(p, v1alpha1.KindDeployment, "api").MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive), "the namespace still follows its Mesh")
	})
}
