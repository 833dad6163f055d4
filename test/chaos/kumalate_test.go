//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// TestKumaArrivesLater is TestMeshArrivesLater for Kuma: the operator starts on a cluster without
// Kuma's CRDs; then they arrive with a STRICT Mesh. The policy follows within seconds, without a
// restart, and annotates the Kuma workload. Then Kuma's CRDs go: the operator keeps running, says
// so, and the workload reads as without mTLS.
func TestKumaArrivesLater(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	kuma := meshdouble.DefaultKumaOptions()
	kuma.ProbeProxyPort = 0 // the control plane's probe proxy is off: only the policy turns it on
	c, cl, err := startClusterWith(ctx, fmt.Sprintf("chaos-kuma-%d", os.Getpid()), &localcluster.InjectorOptions{KumaOnly: true, KumaConfig: &kuma})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		_ = c.Stop()
		if !t.Failed() {
			_ = os.RemoveAll(c.Dir)
		}
	})
	removing, cancelRemove := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelRemove()
	g.Expect(c.RemoveKumaCRDs(removing)).To(Succeed())
	op := startOperator(t, c, "operator")
	logPath := filepath.Join(c.Dir, "logs", "operator.log")
	g.Expect(os.ReadFile(logPath)).To(ContainSubstring("Mesh is not served by this cluster yet"))

	// Kuma arrives, with a STRICT Mesh.
	installed := time.Now()
	installing, cancelInstall := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelInstall()
	g.Expect(c.InstallKumaCRDs(installing)).To(Succeed())
	mesh := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": map[string]any{"name": "default"},
		"spec": map[string]any{"mtls": map[string]any{"enabledBackend": "ca-1",
			"backends": []any{map[string]any{"name": "ca-1", "type": "builtin", "mode": "STRICT"}}}},
	}}
	g.Eventually(func() error { return cl.Create(ctx, mesh) }, time.Minute, interval).Should(Succeed())
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kuma-late-",
		Labels: map[string]string{kumamesh.SidecarInjectionLabel: "enabled"}}}
	g.Expect(cl.Create(ctx, namespace)).To(Succeed())
	d := nginx(namespace.Name, "web", 1)
	g.Expect(cl.Create(ctx, d)).To(Succeed())
	p := policy(namespace.Name, 1)
	g.Expect(cl.Create(ctx, p)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(p.Status.Mesh).To(Equal("Kuma"))
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(kumamesh.ProbeProxyPortAnnotation, "9001"))
	}, time.Minute, interval).Should(Succeed())
	followed := time.Since(installed)
	g.Expect(os.ReadFile(logPath)).To(ContainSubstring("Mesh is now served"))

	// Kuma's CRDs go.
	removed := time.Now()
	g.Expect(c.RemoveKumaCRDs(removing)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSDisable))
		data, err := os.ReadFile(logPath)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(bytes.Contains(data, []byte("Mesh is no longer served"))).To(BeTrue())
	}, time.Minute, interval).Should(Succeed())
	noticed := time.Since(removed)
	g.Consistently(op.Alive, 5*time.Second, interval).Should(BeTrue(), "the operator exited after Kuma's CRDs went")
	g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(kumamesh.ProbeProxyPortAnnotation, "9001"), "the annotation stays")

	op.Stop()
	g.Expect(checkNoForbidden(c)).To(Succeed())
	t.Logf("FIGURE kuma-late: policy followed Kuma installed after the operator in %s (STRICT Mesh, template annotated, no restart); "+
		"Kuma's CRDs removed: noticed and read as without mTLS in %s, operator still running",
		followed.Round(100*time.Millisecond), noticed.Round(100*time.Millisecond))
}
