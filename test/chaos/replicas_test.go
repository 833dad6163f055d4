//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
)

// leaseName is the operator's leader-election Lease (main.go LeaderElectionID).
const leaseName = "probe-redirect-operator.proberedirect.io"

// Issue 14.3: two operator processes with leader election; the leader is killed (SIGKILL, so it
// cannot release the lease) mid-rollout. The other takes over within the lease duration (15 s,
// controller-runtime's default) plus its retry period, and no workload is rolled twice.
func TestTwoReplicasLeaderKilled(t *testing.T) {
	const maxConcurrent = 5
	workloads := chaosSize("CHAOS_REPLICAS_WORKLOADS", 40)
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, k8s, "replicas")
	strictPeerAuthentication(t, k8s, ns)
	createDeployments(t, k8s, ns, workloads)

	start := func(name string) *localcluster.Operator {
		op, err := localcluster.StartOperator(manager, filepath.Join(cluster.Dir, "logs", name+".log"), localcluster.ManagerStarted,
			operatorArgs(cluster, "--leader-elect=true", "--leader-election-namespace="+identities[cluster].namespace)...)
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(func() {
			if op.Alive() {
				op.Stop()
			}
		})
		return op
	}
	a := start("operator-replica-a")
	// Let a take the lease first, so the test knows the leader.
	g.Eventually(func() ([]byte, error) {
		return os.ReadFile(filepath.Join(cluster.Dir, "logs", "operator-replica-a.log"))
	},
		time.Minute, interval).Should(ContainSubstring(localcluster.WorkersStarted))
	b := start("operator-replica-b")
	began := time.Now()
	g.Expect(k8s.Create(ctx, policy(ns, maxConcurrent))).To(Succeed())

	g.Eventually(func(g Gomega) {
		ds, err := listDeployments(ctx, k8s, ns)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(inFlight(ds)).To(BeNumerically(">=", 2))
	}, 2*time.Minute, 100*time.Millisecond).Should(Succeed())
	bLog := filepath.Join(cluster.Dir, "logs", "operator-replica-b.log")
	data, err := os.ReadFile(bLog)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bytes.Contains(data, []byte(localcluster.WorkersStarted))).To(BeFalse(), "the follower ran its controller while a led")

	a.Kill()
	killed := time.Now()
	var takeover time.Duration
	g.Eventually(func(g Gomega) {
		data, err := os.ReadFile(bLog)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(bytes.Contains(data, []byte(localcluster.WorkersStarted))).To(BeTrue())
		takeover = time.Since(killed)
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
	lease := &coordinationv1.Lease{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: identities[cluster].namespace, Name: leaseName}, lease)).To(Succeed())

	took := checkConverged(t, k8s, ns, workloads, began, 10*time.Minute)
	g.Expect(b.Alive()).To(BeTrue())
	t.Logf("FIGURE replicas: leader SIGKILLed mid-rollout; the other replica took over in %s (lease %ds, holder %s); "+
		"%d Deployments converged in %s, each rolled exactly once",
		takeover.Round(100*time.Millisecond), *lease.Spec.LeaseDurationSeconds, *lease.Spec.HolderIdentity, workloads, took.Round(time.Second))
	g.Expect(takeover).To(BeNumerically("<=", time.Duration(*lease.Spec.LeaseDurationSeconds)*time.Second+5*time.Second),
		"takeover slower than the lease duration plus the retry period")
}
