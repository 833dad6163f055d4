//go:build bench

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// memNamespace is scenario 3's namespace i.
func memNamespace(i int) string { return fmt.Sprintf("bench-mem-%03d", i) }

// cacheBaselineEnv makes the harness's binary run the cache baseline instead (see cacheBaseline).
const cacheBaselineEnv = "BENCH_CACHE_BASELINE_KUBECONFIG"

// scenarioMemory is scenario 3: a policy in each of MemNamespaces namespaces over MemWorkloads
// Deployments (already redirected, so nothing rolls), with MemEvents Events about their pods
// (a tenth of them kubelet Unhealthy warnings), on top of everything the other scenarios left.
// The operator's RSS is read after every policy is Ready; the baseline is controller-runtime's
// default cache of the same kinds (every object, whole, no transforms and no field selector) in
// a process of its own, over the same cluster.
func (b *bench) scenarioMemory(ctx context.Context) {
	p := b.p
	if p.MemNamespaces == 0 || b.op == nil || !b.op.Alive() {
		return
	}
	logf("[3] memory: %d policies over %d Deployments x %d, %d Events", p.MemNamespaces, p.MemNamespaces*p.MemWorkloads, p.Replicas, p.MemEvents)
	_ = resetPeakRSS(b.op.Pid())
	began := time.Now()
	for i := range p.MemNamespaces {
		if err := b.cl.Create(ctx, b.policy(memNamespace(i))); err != nil {
			b.fail("[3] creating a policy: %v", err)
			return
		}
	}
	podsByNS := map[string][]corev1.Pod{}
	for i := range p.MemNamespaces {
		var list corev1.PodList
		if err := b.cl.List(ctx, &list, client.InNamespace(memNamespace(i))); err != nil || len(list.Items) == 0 {
			b.fail("[3] listing the pods of %s: %v", memNamespace(i), err)
			return
		}
		podsByNS[memNamespace(i)] = list.Items
	}
	err := parallel(ctx, p.MemEvents, 16, func(ctx context.Context, i int) error {
		ns := memNamespace(i % p.MemNamespaces)
		pods := podsByNS[ns]
		pod := pods[(i/p.MemNamespaces)%len(pods)]
		now := metav1.Now()
		e := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: pod.Name + "."},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID,
				APIVersion: "v1", FieldPath: "spec.containers{nginx}"},
			Reason: "Pulled", Message: `Container image "nginx:1.27" already present on machine`, Type: corev1.EventTypeNormal,
			Source:         corev1.EventSource{Component: "kubelet", Host: pod.Spec.NodeName},
			FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		if i%10 == 0 {
			e.Reason, e.Message, e.Type = "Unhealthy", stormMessage, corev1.EventTypeWarning
		}
		return b.cl.Create(ctx, e)
	})
	if err != nil {
		b.fail("[3] creating Events: %v", err)
		return
	}
	unhealthy := (p.MemEvents + 9) / 10
	for i := range p.MemNamespaces {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, p.Timeout, true, func(ctx context.Context) (bool, error) {
			ok := b.policyReady(ctx, memNamespace(i), p.MemWorkloads)
			return ok, nil
		})
		if err != nil {
			b.fail("[3] the policy of %s is not Ready: %v", memNamespace(i), err)
			return
		}
	}
	converged := time.Since(began)
	// The Unhealthy events make the policies write their status once more after the coalescing.
	time.Sleep(5 * time.Second)
	after, _ := currentRSS(b.op.Pid())
	peak, _ := rss(b.op.Pid())
	counts, err := b.clusterCounts(ctx)
	if err != nil {
		b.fail("[3] counting the cluster's objects: %v", err)
		return
	}
	logf("[3] memory: %d policies Ready after %s; operator RSS %.1f MiB (peak %.1f MiB); cluster holds %s",
		p.MemNamespaces, converged.Round(100*time.Millisecond), after, peak, counts)
	parts := b.memoryParts(b.op, "operator-heap-after-convergence.pprof")
	logf("[3] memory: the operator's RSS is %s", parts)

	basePeak, baseNow, err := b.cacheBaseline(ctx)
	if err != nil {
		b.fail("[3] the cache baseline: %v", err)
		return
	}
	logf("[3] memory: controller-runtime's default cache of the same kinds: RSS %.1f MiB (peak %.1f MiB)", baseNow, basePeak)
	b.baselineRSS = baseNow
	b.add(figure{Scenario: "3", Name: "memory: operator RSS after convergence", Value: after, Unit: "MiB",
		Baseline: fmt.Sprintf("controller-runtime default cache %.1f MiB (peak %.1f)", baseNow, basePeak), BaselineValue: ptr(baseNow),
		Target: "<= 80 MiB", Met: ptr(after <= 80),
		Note: fmt.Sprintf("the operator has run every scenario before; VmRSS 5 s after %d policies (of %d Deployments, with %d Events added, %d of them Unhealthy) were Ready; the cluster holds %s; "+
			"the issue's size is 10,000 workloads, 20,000 pods, 50,000 Events in 500 namespaces; the RSS is %s", p.MemNamespaces, p.MemNamespaces*p.MemWorkloads,
			p.MemEvents, unhealthy, counts, parts)})
	b.add(figure{Scenario: "3", Name: "memory: operator peak RSS while converging", Value: peak, Unit: "MiB",
		Baseline: fmt.Sprintf("controller-runtime default cache peak %.1f MiB", basePeak), BaselineValue: ptr(basePeak)})
}

// memoryParts says what an operator's RSS is made of: its file-backed and anonymous pages, and of
// the Go heap what is in use and what the live objects took at the last collection (its metrics).
// It saves a heap profile as name beside results.json, for `go tool pprof`.
func (b *bench) memoryParts(op *operator, name string) string {
	file, anon, err := rssParts(op.Pid())
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	out := fmt.Sprintf("%.1f MiB file-backed (the binary) + %.1f MiB anonymous", file, anon)
	if m, err := scrape(op.metricsURL); err == nil {
		out += fmt.Sprintf("; Go heap in use %.1f MiB, next GC at %.1f MiB", m.sum("go_memstats_heap_inuse_bytes")/(1<<20), m.sum("go_memstats_next_gc_bytes")/(1<<20))
	}
	path := filepath.Join(b.outDir, name)
	if err := download(op.pprofURL+"/heap", path); err == nil {
		logf("heap profile of the operator: %s (go tool pprof -sample_index=inuse_space %s)", path, path)
	}
	return out
}

// download writes what url answers to path.
func download(url, path string) error {
	resp, err := http.Get(url) //nolint:gosec // the operator's own loopback pprof endpoint
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// clusterCounts says how many objects of the cached kinds the cluster holds.
func (b *bench) clusterCounts(ctx context.Context) (string, error) {
	var parts []string
	for _, l := range []struct {
		name string
		list client.ObjectList
	}{{"Deployments", &appsv1.DeploymentList{}}, {"Pods", &corev1.PodList{}}, {"Events", &corev1.EventList{}},
		{"Namespaces", &corev1.NamespaceList{}}, {"policies", &v1alpha1.ProbeRedirectPolicyList{}}} {
		if err := b.cl.List(ctx, l.list); err != nil {
			return "", err
		}
		n := 0
		switch v := l.list.(type) {
		case *appsv1.DeploymentList:
			n = len(v.Items)
		case *corev1.PodList:
			n = len(v.Items)
		case *corev1.EventList:
			n = len(v.Items)
		case *corev1.NamespaceList:
			n = len(v.Items)
		case *v1alpha1.ProbeRedirectPolicyList:
			n = len(v.Items)
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, l.name))
	}
	return strings.Join(parts, ", "), nil
}

// cacheBaseline runs this binary again as the cache baseline, waits until its informers have
// synced, lets it settle for 5 s, and returns its peak and current RSS in MiB.
func (b *bench) cacheBaseline(ctx context.Context) (peak, now float64, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), cacheBaselineEnv+"="+b.cluster.Kubeconfig)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	synced := make(chan error, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if s.Text() == "synced" {
				synced <- nil
				return
			}
		}
		synced <- fmt.Errorf("the cache baseline exited before its caches synced")
	}()
	select {
	case err := <-synced:
		if err != nil {
			return 0, 0, err
		}
	case <-time.After(b.p.Timeout):
		return 0, 0, fmt.Errorf("the cache baseline did not sync within %s", b.p.Timeout)
	}
	time.Sleep(5 * time.Second)
	if now, err = currentRSS(cmd.Process.Pid); err != nil {
		return 0, 0, err
	}
	peak, err = rss(cmd.Process.Pid)
	return peak, now, err
}

// cacheBaseline is the baseline process of scenario 3: controller-runtime's cache with its
// defaults (every object of each kind, whole: no transforms, no field or label selectors) for the
// kinds the operator watches: policies, Namespaces, Pods, Events, Deployments, StatefulSets,
// DaemonSets and PeerAuthentications. It prints "synced" once every informer has synced, and runs
// until a signal ends it (the harness kills it).
func cacheBaseline(kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, obj := range []client.Object{&v1alpha1.ProbeRedirectPolicy{}, &corev1.Namespace{}, &corev1.Pod{}, &corev1.Event{},
		&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}, &securityv1.PeerAuthentication{}} {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("the caches did not sync")
	}
	fmt.Println("synced")
	<-ctx.Done()
	return nil
}
