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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Issue 14.5: the operator starts on a cluster without Istio's CRDs; then Istio arrives (its CRDs,
// its injector, a STRICT PeerAuthentication). The policy follows within seconds, without a
// restart. Then Istio's CRDs go again: the operator keeps running, says so, and the policy falls
// back to PERMISSIVE.
func TestMeshArrivesLater(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, cl, err := startCluster(ctx, fmt.Sprintf("chaos-mesh-%d", os.Getpid()), true)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		_ = c.Stop()
		if !t.Failed() {
			_ = os.RemoveAll(c.Dir)
		}
	})
	op := startOperator(t, c, "operator")
	logPath := filepath.Join(c.Dir, "logs", "operator.log")
	g.Expect(os.ReadFile(logPath)).To(ContainSubstring("PeerAuthentication is not served by this cluster yet"))

	// Istio arrives.
	installed := time.Now()
	starting, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelStart()
	g.Expect(c.StartMesh(starting)).To(Succeed())
	ns := newNamespace(t, cl, "late")
	strictPeerAuthentication(t, cl, ns)
	d := nginx(ns, "web", 1)
	g.Expect(cl.Create(ctx, d)).To(Succeed())
	p := policy(ns, 1)
	g.Expect(cl.Create(ctx, p)).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		g.Expect(annotated(d)).To(BeTrue())
	}, time.Minute, interval).Should(Succeed())
	followed := time.Since(installed)
	g.Expect(os.ReadFile(logPath)).To(ContainSubstring("PeerAuthentication is now served"))

	// Istio's CRDs go.
	removed := time.Now()
	removing, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	g.Expect(c.RemoveMeshCRDs(removing)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		data, err := os.ReadFile(logPath)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(bytes.Contains(data, []byte("PeerAuthentication is no longer served"))).To(BeTrue())
	}, time.Minute, interval).Should(Succeed())
	noticed := time.Since(removed)
	g.Consistently(op.Alive, 5*time.Second, interval).Should(BeTrue(), "the operator exited after Istio's CRDs went")

	op.Stop()
	g.Expect(checkNoForbidden(c)).To(Succeed())
	t.Logf("FIGURE mesh-late: policy followed Istio installed after the operator in %s (STRICT, template annotated, no restart); "+
		"Istio's CRDs removed: noticed and back to PERMISSIVE in %s, operator still running",
		followed.Round(100*time.Millisecond), noticed.Round(100*time.Millisecond))
}
