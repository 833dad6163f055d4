//go:build chaos

package chaos

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// chaosSize reads an int from the environment (CI runs smaller sizes than by hand).
func chaosSize(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// recordWatch samples the cluster while the operator is killed and restarted: the highest
// number of rollouts in flight at once, and whether any rollout record's start time changed
// (a deadline that did not survive a restart).
type recordWatch struct {
	mu          sync.Mutex
	maxInFlight int
	started     map[string]time.Time // name/generation -> startedAt
	changed     []string
	samples     int
}

func (w *recordWatch) sample(ctx context.Context, cl client.Client, ns string) {
	ds, err := listDeployments(ctx, cl, ns)
	if err != nil {
		return // the API server may be away; the next sample counts
	}
	p := &v1alpha1.ProbeRedirectPolicy{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "chaos"}, p); err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	w.maxInFlight = max(w.maxInFlight, inFlight(ds))
	for _, r := range p.Status.Rollouts {
		if r.StartedAt == nil {
			continue
		}
		key := r.Name + "/" + strconv.FormatInt(r.Generation, 10)
		if first, ok := w.started[key]; !ok {
			w.started[key] = r.StartedAt.Time
		} else if !first.Equal(r.StartedAt.Time) {
			w.changed = append(w.changed, key+": "+first.String()+" -> "+r.StartedAt.String())
		}
	}
}

// run samples every 100ms until ctx ends.
func (w *recordWatch) run(ctx context.Context, cl client.Client, ns string) {
	for ctx.Err() == nil {
		w.sample(ctx, cl, ns)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Issue 14.1: SIGKILL the operator at random moments while one policy rolls Deployments with
// maxConcurrent 10. Every Deployment converges, its template changed exactly once, no user field
// is lost, maxConcurrent holds across restarts, and rollout records (the deadlines' start times)
// survive the restarts.
func TestCrashAnywhere(t *testing.T) {
	const maxConcurrent = 10
	workloads := chaosSize("CHAOS_CRASH_WORKLOADS", 200)
	kills := chaosSize("CHAOS_CRASH_KILLS", 20)
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, k8s, "crash")
	strictPeerAuthentication(t, k8s, ns)
	createDeployments(t, k8s, ns, workloads)

	op := startOperator(t, cluster, "operator-crash")
	began := time.Now()
	g.Expect(k8s.Create(ctx, policy(ns, maxConcurrent))).To(Succeed())

	watch := &recordWatch{started: map[string]time.Time{}}
	sampling, stopSampling := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { watch.run(sampling, k8s, ns); close(done) }()

	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	var downFor time.Duration
	for range kills {
		time.Sleep(time.Duration(300+r.IntN(2700)) * time.Millisecond)
		op.Kill()
		killedAt := time.Now()
		var err error
		op, err = startOperatorAgain(t)
		g.Expect(err).NotTo(HaveOccurred())
		downFor += time.Since(killedAt)
	}
	took := checkConverged(t, k8s, ns, workloads, began, 10*time.Minute)
	stopSampling()
	<-done
	op.Stop()

	watch.mu.Lock()
	defer watch.mu.Unlock()
	t.Logf("FIGURE crash: %d SIGKILLs survived; %d Deployments converged in %s, each rolled exactly once "+
		"(generation 2, at most 2 ReplicaSets), user fields kept; at most %d rollouts in flight (maxConcurrent %d, %d samples); "+
		"%d rollout records kept their start time across restarts; operator down %s in total",
		kills, workloads, took.Round(time.Second), watch.maxInFlight, maxConcurrent, watch.samples,
		len(watch.started), downFor.Round(100*time.Millisecond))
	g.Expect(watch.maxInFlight).To(BeNumerically("<=", maxConcurrent), "maxConcurrent exceeded across restarts")
	g.Expect(watch.maxInFlight).To(BeNumerically(">", 1), "the sampler never saw rollouts in flight")
	g.Expect(watch.changed).To(BeEmpty(), "rollout start times changed across restarts")
	g.Expect(watch.started).NotTo(BeEmpty(), "no rollout record was ever seen")
}

// startOperatorAgain starts the crash test's operator after a kill, appending to the same log.
func startOperatorAgain(t *testing.T) (*localclusterOperator, error) {
	t.Helper()
	op, err := startOperatorQuiet(cluster, "operator-crash")
	if err == nil {
		t.Cleanup(func() {
			if op.Alive() {
				op.Stop()
			}
		})
	}
	return op, err
}
