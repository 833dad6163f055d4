//go:build bench

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
)

const policyName = "bench"

func main() {
	if kubeconfig := os.Getenv(cacheBaselineEnv); kubeconfig != "" {
		if err := cacheBaseline(kubeconfig); err != nil {
			fmt.Fprintln(os.Stderr, "cache baseline:", err)
			os.Exit(1)
		}
		return
	}
	if path := os.Getenv("BENCH_MARKDOWN"); path != "" {
		if err := renderMarkdown(path, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "markdown:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run() int {
	began := time.Now()
	p, err := loadParams()
	if err != nil {
		logf("%v", err)
		return 2
	}
	root, err := localcluster.RepoRoot()
	if err != nil {
		logf("%v", err)
		return 2
	}
	manager := os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(root, "bin", "manager")
	}
	if _, err := os.Stat(manager); err != nil {
		logf("operator binary %s not found: run `make build` (make bench does it)", manager)
		return 2
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(root, "bench", "results.json")
	}
	work := filepath.Join(root, ".local", "bench", fmt.Sprintf("%d", os.Getpid()))
	if err := os.MkdirAll(work, 0o755); err != nil {
		logf("%v", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{p: p, root: root, work: work, manager: manager, outDir: filepath.Dir(out), res: &results{
		Date: began.UTC(), Machine: readMachine(), Commit: commit(root), Scale: p.Scale, Params: p,
	}}
	b.res.Setup = setup{
		Nodes: p.nodes(), PodsPerNode: podsPerNode, PeakPods: p.pods(), Deployments: p.deployments(),
		ReadyDelay: fmt.Sprintf("%s-%s", p.ReadyDelay, p.ReadyDelay+p.ReadyJitter),
		Operator:   manager,
		OperatorArgs: "as the installer's ServiceAccount (dist/install.yaml RBAC), --leader-elect=false, " +
			"--metrics-bind-address=127.0.0.1:<port> --metrics-secure=false, defaults otherwise (--concurrency=2, --event-coalesce=2s, GOGC 25 as the manager sets it when the environment has no GOGC)",
		APICounting: "kube-apiserver audit log (audit.k8s.io/v1, Metadata level, ResponseComplete stage) of the requests " +
			"made by the operator's ServiceAccount; watches are not counted; the operator's own client-go metrics " +
			"(rest_client_requests_total on its metrics endpoint) are the cross-check",
	}
	b.res.Setup.ControllerManager = "its default client limits (--kube-api-qps=20, burst 30)"
	if p.ControllerManagerQPS > 0 {
		b.res.Setup.ControllerManager = fmt.Sprintf("--kube-api-qps=%d --kube-api-burst=%d (raised from 20/30 so that its Deployment and ReplicaSet "+
			"controllers keep up with many rollouts; BENCH_KCM_QPS=0 keeps the default)", p.ControllerManagerQPS, 2*p.ControllerManagerQPS)
	}
	switch p.Mesh {
	case "double":
		b.res.Setup.Mesh = "the mesh double (test/meshdouble, in the harness process, as `localcluster up --mesh=double`)"
	default:
		b.res.Setup.Mesh = "Istio's own sidecar injector (bin/istio-injector)"
	}
	code := b.run(ctx)
	b.res.Seconds = time.Since(began).Seconds()
	b.res.print(os.Stdout)
	if err := b.res.write(out); err != nil {
		logf("writing %s: %v", out, err)
		code = 1
	} else {
		logf("wrote %s", out)
	}
	if len(b.res.Failures) > 0 {
		code = 1
	}
	return code
}

// bench holds one run.
type bench struct {
	p                   params
	root, work, manager string
	// outDir is where results.json goes, and the operator's heap profiles.
	outDir               string
	res                  *results
	cluster              *localcluster.Cluster
	cl                   client.Client
	cs                   kubernetes.Interface
	id                   *identity
	t                    *tracker
	op                   *operator
	converged, readyTook time.Duration
	// baselineRSS is scenario 3's controller-runtime default cache RSS (0 before it ran).
	baselineRSS float64
}

func (b *bench) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("FAILED: %s", msg)
	b.res.Failures = append(b.res.Failures, msg)
}

func (b *bench) add(f figure) { b.res.Figures = append(b.res.Figures, f) }

func (b *bench) run(ctx context.Context) int {
	p := b.p
	logf("scale %s: %d Deployments x %d replicas per set (operator, floor, unbounded floor), %d for manual, %d x %d for the storm, %d x %d for memory; "+
		"starting the local control plane with %d kwok nodes of %d pods (planned peak %d pods), pods Ready after %s, injector %s",
		p.Scale, p.Workloads, p.Replicas, p.Manual, p.StormPolicies, p.StormDeployments, p.MemNamespaces, p.MemWorkloads,
		p.nodes(), podsPerNode, p.pods(), p.ReadyDelay, p.Mesh)
	var err error
	b.cluster, b.cl, b.id, err = startCluster(ctx, b.root, b.work, p, logf)
	if err != nil {
		b.fail("starting the local control plane: %v", err)
		return 1
	}
	defer b.cleanup()
	cfg := *b.cluster.RESTConfig
	cfg.QPS, cfg.Burst = -1, 0
	if b.cs, err = kubernetes.NewForConfig(&cfg); err != nil {
		b.fail("%v", err)
		return 1
	}
	if b.t, err = newTracker(ctx, b.cs); err != nil {
		b.fail("%v", err)
		return 1
	}

	// Every set, created before the operator starts, so that its cache holds the whole cluster.
	setupBegan := time.Now()
	for _, s := range p.sets() {
		if err := createSet(ctx, b.cl, s, p.Replicas); err != nil {
			b.fail("creating %s: %v", s.ns, err)
			return 1
		}
	}
	for _, s := range p.sets() {
		if err := b.t.waitFor(ctx, s.ns, p.Timeout, allAvailable(s.n)); err != nil {
			b.fail("waiting for the Deployments of %s to be available: %v", s.ns, err)
			return 1
		}
	}
	logf("%d Deployments available after %s", b.res.Setup.Deployments, time.Since(setupBegan).Round(100*time.Millisecond))

	opStart := time.Now()
	b.op, err = startOperator(ctx, b.manager, b.id, filepath.Join(b.cluster.Dir, "logs", "operator.log"))
	if err != nil {
		b.fail("starting the operator: %v", err)
		return 1
	}
	logf("operator pid %d running after %s (metrics %s)", b.op.Pid(), time.Since(opStart).Round(100*time.Millisecond), b.op.metricsURL)
	if peak, err := rss(b.op.Pid()); err == nil {
		b.add(figure{Scenario: "-", Name: "operator peak RSS, start over the populated cluster", Value: peak, Unit: "MiB",
			Note: fmt.Sprintf("caches the %d Deployments and %d pods already there", b.res.Setup.Deployments, b.res.Setup.Deployments*p.Replicas)})
	}

	b.scenarioConverge(ctx)
	b.scenarioFloors(ctx)
	b.scenarioIdle(ctx)
	b.scenarioGrowth(ctx)
	b.scenarioStorm(ctx)
	b.scenarioMemory(ctx)
	b.scenarioColdStart(ctx)
	b.checkForbidden()
	b.res.Missing = []string{
		"3 with StatefulSets and DaemonSets: every workload is a Deployment",
		"the API server's own request metrics (apiserver_request_total has no user label; the audit log is used instead)",
	}
	if len(p.Growth) == 0 {
		b.res.Missing = append(b.res.Missing, "7 growth: off at this size (BENCH_GROWTH=100,250,500,1000 turns it on; the full size runs it)")
	}
	if p.Scale == "small" {
		b.res.Missing = append(b.res.Missing, fmt.Sprintf("manual at full length: %d of %d workloads rolled by kubectl, the rest extrapolated", p.Manual, p.Workloads))
	}
	return 0
}

func (b *bench) cleanup() {
	if b.op != nil && b.op.Alive() {
		b.op.Stop()
	}
	if err := b.cluster.Stop(); err != nil {
		logf("stopping the local control plane: %v", err)
	}
	if len(b.res.Failures) == 0 && os.Getenv("BENCH_KEEP") == "" {
		_ = os.RemoveAll(b.cluster.Dir)
		_ = os.RemoveAll(b.work)
	} else {
		logf("logs and the audit log kept in %s and %s", b.cluster.Dir, b.work)
	}
}

func (b *bench) policy(ns string) *v1alpha1.ProbeRedirectPolicy {
	pol := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: policyName},
		Spec: v1alpha1.ProbeRedirectPolicySpec{Selector: v1alpha1.FromLabelSelector(&metav1.LabelSelector{
			MatchLabels: map[string]string{appLabel: "web"}})},
	}
	pol.Spec.Rollout.MaxConcurrent = int32(b.p.MaxConcurrent)
	return pol
}

// policyReady reports whether the policy's status is current, says Ready and counts n rolled out.
func (b *bench) policyReady(ctx context.Context, ns string, n int) bool {
	pol := &v1alpha1.ProbeRedirectPolicy{}
	if err := b.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: policyName}, pol); err != nil {
		return false
	}
	if pol.Status.ObservedGeneration != pol.Generation || pol.Status.Summary.RolledOutWorkloads != int32(n) {
		return false
	}
	for _, c := range pol.Status.Conditions {
		if c.Type == string(v1alpha1.ConditionReady) {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// scenarioConverge is scenario 1 for the operator, and scenario 6 (its API cost).
func (b *bench) scenarioConverge(ctx context.Context) {
	p := b.p
	logf("[1] operator: a policy with maxConcurrent %d over %d Deployments in %s", p.MaxConcurrent, p.Workloads, nsOperator)
	_ = resetPeakRSS(b.op.Pid())
	before, err := scrape(b.op.metricsURL)
	if err != nil {
		b.fail("scraping the operator's metrics: %v", err)
		return
	}
	began := time.Now()
	if err := b.cl.Create(ctx, b.policy(nsOperator)); err != nil {
		b.fail("creating the policy: %v", err)
		return
	}
	maxInFlight, err := b.waitConverged(ctx, nsOperator, p.Workloads)
	if err != nil {
		b.fail("[1] the operator did not converge: %v", err)
		return
	}
	b.converged = time.Since(began)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, p.Timeout, true, func(ctx context.Context) (bool, error) {
		ok := b.policyReady(ctx, nsOperator, p.Workloads)
		return ok, nil
	})
	if err != nil {
		b.fail("[1] the policy did not report Ready with %d rolled out: %v", p.Workloads, err)
		return
	}
	b.readyTook = time.Since(began)
	logf("[1] operator: every Deployment rolled out after %s, policy Ready after %s (most in flight %d)",
		b.converged.Round(100*time.Millisecond), b.readyTook.Round(100*time.Millisecond), maxInFlight)
	// Let the last status write and Events land (event coalescing is 2 s).
	time.Sleep(4 * time.Second)
	end := time.Now()
	after, err := scrape(b.op.metricsURL)
	if err != nil {
		b.fail("scraping the operator's metrics: %v", err)
		return
	}
	peak, _ := rss(b.op.Pid())
	b.rolloutFigures(began, end, before, after, maxInFlight, peak)
}

// waitConverged waits until the n Deployments of ns are annotated and rolled out, and returns the
// most rollouts seen in flight at once.
func (b *bench) waitConverged(ctx context.Context, ns string, n int) (int, error) {
	maxInFlight := 0
	err := b.t.waitFor(ctx, ns, b.p.Timeout, func(ds []*appsv1.Deployment) bool {
		inFlight, done := 0, 0
		for _, d := range ds {
			switch {
			case annotated(d) && rolledOut(d):
				done++
			case annotated(d):
				inFlight++
			}
		}
		maxInFlight = max(maxInFlight, inFlight)
		return done == n
	})
	return maxInFlight, err
}

// rolloutFigures adds scenario 1's operator figures and scenario 6's.
func (b *bench) rolloutFigures(began, end time.Time, before, after metrics, maxInFlight int, peak float64) {
	p := b.p
	n := float64(p.Workloads)
	b.add(figure{Scenario: "1", Name: fmt.Sprintf("converge %d Deployments x %d, operator (maxConcurrent %d)", p.Workloads, p.Replicas, p.MaxConcurrent),
		Value: b.converged.Seconds(), Unit: "s",
		Note: fmt.Sprintf("from creating the policy to the last Deployment rolled out by kubectl's rules; the policy reported Ready after %.1f s", b.readyTook.Seconds())})
	b.add(figure{Scenario: "1", Name: "rollouts in flight at most (operator)", Value: float64(maxInFlight),
		Target: fmt.Sprintf("<= maxConcurrent (%d)", p.MaxConcurrent), Met: ptr(maxInFlight <= p.MaxConcurrent)})
	b.add(figure{Scenario: "1", Name: "operator peak RSS while converging", Value: peak, Unit: "MiB"})
	b.add(figure{Scenario: "1", Name: "operator CPU while converging", Value: after.sum("process_cpu_seconds_total") - before.sum("process_cpu_seconds_total"), Unit: "s",
		Note: fmt.Sprintf("process_cpu_seconds_total over the %.1f s; %d garbage collections (go_gc_duration_seconds_count)", end.Sub(began).Seconds(),
			int(after.sum("go_gc_duration_seconds_count")-before.sum("go_gc_duration_seconds_count")))})

	cost, err := readAudit(b.id.auditLog, b.id.user, began, end)
	if err != nil {
		b.fail("[6] reading the audit log: %v", err)
		return
	}
	b.res.APICost = &cost
	reconciles := after.sum("controller_runtime_reconcile_total") - before.sum("controller_runtime_reconcile_total")
	rollWindow := b.converged.Seconds()
	rolling, err := readAudit(b.id.auditLog, b.id.user, began, began.Add(b.converged))
	if err != nil {
		b.fail("[6] reading the audit log: %v", err)
		return
	}
	statusRate := float64(rolling.StatusWrites) / max(rollWindow/2, 1)
	b.add(figure{Scenario: "6", Name: "template writes per workload", Value: float64(cost.TemplateWrites) / n,
		Target: "exactly 1", Met: ptr(cost.TemplateWrites == p.Workloads && cost.TemplateWorkloads == p.Workloads),
		Note: fmt.Sprintf("%d writes to %d workloads", cost.TemplateWrites, cost.TemplateWorkloads)})
	b.add(figure{Scenario: "6", Name: "status writes per policy per 2 s while rolling", Value: statusRate,
		Target: "<= 1", Met: ptr(statusRate <= 1 && rolling.MaxStatusWritesIn2s <= 1),
		Note: fmt.Sprintf("%d status writes to 1 policy while rolling (%.1f s; %d to Ready+4 s); at most %d within any 2 s (met needs the average and every 2 s window <= 1)",
			rolling.StatusWrites, rollWindow, cost.StatusWrites, rolling.MaxStatusWritesIn2s)})
	b.add(figure{Scenario: "6", Name: "Event writes per workload", Value: float64(cost.EventWrites) / n,
		Target: "one per transition per workload (<= 3), aggregated when many move", Met: ptr(float64(cost.EventWrites)/n <= 3),
		Note: fmt.Sprintf("%d Event creates/patches for %d workloads; 'met' checks only the per-workload bound, not aggregation", cost.EventWrites, p.Workloads)})
	b.add(figure{Scenario: "6", Name: "uncached reads (GET/LIST of objects)", Value: float64(cost.ResourceReads),
		// The one policy's first reconcile in a process may read it from the API server (the
		// operator has neither read nor written it yet); every later reconcile must not.
		Target: "no uncached read per reconcile (at most the policy's first)", Met: ptr(cost.ResourceReads <= 1),
		Note: fmt.Sprintf("%.0f reconciles (controller_runtime_reconcile_total): %.2f reads per reconcile; by resource %v; plus %d discovery GETs",
			reconciles, float64(cost.ResourceReads)/max(reconciles, 1), cost.ReadsByKind, cost.DiscoveryReads)})
	b.add(figure{Scenario: "6", Name: "all writes by the operator", Value: float64(cost.Writes),
		Note: fmt.Sprintf("%v; %d conflicts (409)", cost.WritesByKind, cost.Conflicts)})
	var methods []string
	clientTotal := 0.0
	for _, m := range []string{"GET", "LIST", "POST", "PUT", "PATCH", "DELETE"} {
		d := after.sum("rest_client_requests_total", `method="`+m+`"`) - before.sum("rest_client_requests_total", `method="`+m+`"`)
		clientTotal += d
		if d > 0 {
			methods = append(methods, fmt.Sprintf("%s %.0f", m, d))
		}
	}
	b.add(figure{Scenario: "6", Name: "requests by the operator's client (its own metrics)", Value: clientTotal,
		Baseline: fmt.Sprintf("audit log: %d", cost.Requests),
		Note:     fmt.Sprintf("rest_client_requests_total by method: %s (watch requests included; the audit count leaves watches out)", strings.Join(methods, ", "))})
	started := after.sum("proberedirect_rollouts_started_total") - before.sum("proberedirect_rollouts_started_total")
	b.add(figure{Scenario: "6", Name: "rollouts started (proberedirect_rollouts_started_total)", Value: started,
		Target: fmt.Sprintf("%d, one per workload", p.Workloads), Met: ptr(int(started) == p.Workloads)})
}

// scenarioFloors runs scenario 1's baselines on their own fresh Deployments.
func (b *bench) scenarioFloors(ctx context.Context) {
	p := b.p
	_ = resetPeakRSS(b.op.Pid())
	logf("[1] floor: client-go, %d rollouts in flight, over %d Deployments in %s", p.MaxConcurrent, p.Workloads, nsFloor)
	bounded, err := floor(ctx, b.cs, b.t, nsFloor, p.Workloads, p.MaxConcurrent, p.Timeout)
	if err != nil {
		b.fail("[1] floor: %v", err)
		return
	}
	logf("[1] floor: %s", bounded.Round(100*time.Millisecond))
	logf("[1] unbounded floor: client-go, all %d at once, in %s", p.Workloads, nsFloorAll)
	unbounded, err := floor(ctx, b.cs, b.t, nsFloorAll, p.Workloads, p.Workloads, p.Timeout)
	if err != nil {
		b.fail("[1] unbounded floor: %v", err)
		return
	}
	logf("[1] unbounded floor: %s", unbounded.Round(100*time.Millisecond))
	logf("[1] manual: kubectl patch + kubectl rollout status, one at a time, %d Deployments in %s", p.Manual, nsManual)
	manualTook, err := manual(ctx, filepath.Join(b.root, "bin", "kubectl"), b.cluster.Kubeconfig, nsManual, p.Manual, p.Timeout)
	if err != nil {
		b.fail("[1] manual: %v", err)
		return
	}
	perWorkload := manualTook.Seconds() / float64(p.Manual)
	manualN := perWorkload * float64(p.Workloads)
	logf("[1] manual: %s for %d (%.1f s each; %.0f s for %d)", manualTook.Round(100*time.Millisecond), p.Manual, perWorkload, manualN, p.Workloads)
	peak, _ := rss(b.op.Pid())

	if b.converged == 0 {
		return
	}
	op := b.converged.Seconds()
	ratio := op / bounded.Seconds()
	b.add(figure{Scenario: "1", Name: fmt.Sprintf("operator / floor at equal concurrency (%d)", p.MaxConcurrent), Value: ratio, Unit: "x",
		Baseline:      fmt.Sprintf("floor %.1f s; unbounded floor (all %d at once) %.1f s", bounded.Seconds(), p.Workloads, unbounded.Seconds()),
		BaselineValue: ptr(bounded.Seconds()), Target: "<= 1.2x the floor", Met: ptr(ratio <= 1.2),
		Note: fmt.Sprintf("operator %.1f s; the floors ran on their own fresh Deployments in the same cluster after the operator's run", op)})
	speedup := manualN / op
	b.add(figure{Scenario: "1", Name: "operator speed-up over manual", Value: speedup, Unit: "x",
		Baseline:      fmt.Sprintf("manual %.0f s for %d (%.1f s each)", manualN, p.Workloads, perWorkload),
		BaselineValue: ptr(manualN), Target: ">= 10x faster", Met: ptr(speedup >= 10),
		Note: fmt.Sprintf("manual rolled %d of %d Deployments with kubectl (%.1f s) and is extrapolated linearly to %d", p.Manual, p.Workloads, manualTook.Seconds(), p.Workloads)})
	b.add(figure{Scenario: "1", Name: "operator peak RSS while the baselines ran (watching only)", Value: peak, Unit: "MiB"})
}

// scenarioIdle is scenario 4: nothing changes, and the operator's writes are counted at the API
// server.
func (b *bench) scenarioIdle(ctx context.Context) {
	if b.converged == 0 {
		return
	}
	p := b.p
	// Let the baselines' churn settle: every Deployment rolled out, then a quiet few seconds.
	for _, s := range p.sets() {
		if err := b.t.waitFor(ctx, s.ns, p.Timeout, allAvailable(s.n)); err != nil {
			b.fail("[4] waiting for %s to settle: %v", s.ns, err)
			return
		}
	}
	time.Sleep(5 * time.Second)
	logf("[4] idle: counting the operator's requests for %s", p.Idle)
	_ = resetPeakRSS(b.op.Pid())
	began := time.Now()
	select {
	case <-ctx.Done():
		return
	case <-time.After(p.Idle):
	}
	end := time.Now()
	time.Sleep(time.Second) // the audit log is written when each request completes
	cost, err := readAudit(b.id.auditLog, b.id.user, began, end)
	if err != nil {
		b.fail("[4] reading the audit log: %v", err)
		return
	}
	peak, _ := rss(b.op.Pid())
	b.add(figure{Scenario: "4", Name: fmt.Sprintf("writes by the operator in %s idle", p.Idle), Value: float64(cost.Writes),
		Target: "0", Met: ptr(cost.Writes == 0),
		Note: fmt.Sprintf("at the API server (audit log); writes %v; reads %d (%v), discovery GETs %d",
			cost.WritesByKind, cost.ResourceReads, cost.ReadsByKind, cost.DiscoveryReads)})
	b.add(figure{Scenario: "4", Name: "operator peak RSS while idle", Value: peak, Unit: "MiB"})
}

// scenarioColdStart is scenario 5 over the converged cluster the other scenarios leave (scenario
// 3's at the end): the operator restarted.
func (b *bench) scenarioColdStart(ctx context.Context) {
	if b.converged == 0 || b.op == nil || !b.op.Alive() {
		return
	}
	p := b.p
	var policies v1alpha1.ProbeRedirectPolicyList
	if err := b.cl.List(ctx, &policies); err != nil {
		b.fail("[5] listing the policies: %v", err)
		return
	}
	want := map[string]v1alpha1.PolicySummary{}
	workloads := 0
	for _, pol := range policies.Items {
		want[pol.Namespace+"/"+pol.Name] = pol.Status.Summary
		workloads += int(pol.Status.Summary.SelectedWorkloads)
	}
	generations := b.t.generations()
	logf("[5] cold start: stopping the operator and starting a new one over %d policies and %d workloads", len(want), workloads)
	b.op.Stop()
	began := time.Now()
	op, err := startOperator(ctx, b.manager, b.id, filepath.Join(b.cluster.Dir, "logs", "operator-restart.log"))
	if err != nil {
		b.fail("[5] restarting the operator: %v", err)
		return
	}
	b.op = op
	workers := time.Since(began)
	var current time.Duration
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, p.Timeout, true, func(context.Context) (bool, error) {
		m, err := scrape(op.metricsURL)
		if err != nil {
			return false, nil
		}
		for key, s := range want {
			ns, name, _ := strings.Cut(key, "/")
			labels := []string{`namespace="` + ns + `"`, `policy="` + name + `"`}
			if m.sum("proberedirect_policy_selected_workloads", labels...) != float64(s.SelectedWorkloads) ||
				m.sum("proberedirect_policy_rewritten_probes", labels...) != float64(s.RewrittenProbes) ||
				m.sum("proberedirect_policy_condition", append(labels, `type="Ready"`, `status="True"`)...) != 1 {
				return false, nil
			}
		}
		current = time.Since(began)
		return true, nil
	})
	if err != nil {
		b.fail("[5] the restarted operator did not report every policy as current: %v", err)
		return
	}
	time.Sleep(5 * time.Second)
	end := time.Now()
	fresh, _ := currentRSS(op.Pid())
	freshParts := b.memoryParts(op, "operator-heap-restarted.pprof")
	logf("[5] cold start: the restarted operator's RSS is %.1f MiB: %s", fresh, freshParts)
	rolled := 0
	for key, gen := range b.t.generations() {
		if gen != generations[key] {
			rolled++
		}
	}
	cost, err := readAudit(b.id.auditLog, b.id.user, began, end)
	if err != nil {
		b.fail("[5] reading the audit log: %v", err)
		return
	}
	peak, _ := rss(op.Pid())
	logf("[5] cold start: workers after %s, every policy current after %s, %d rolled again", workers.Round(100*time.Millisecond), current.Round(100*time.Millisecond), rolled)
	b.add(figure{Scenario: "5", Name: fmt.Sprintf("cold start: every policy's status current (%d policies, %d workloads)", len(want), workloads), Value: current.Seconds(), Unit: "s",
		Target: "<= 60 s", Met: ptr(current <= time.Minute),
		Note: fmt.Sprintf("from starting the process until its metrics report every policy's stored summary and Ready; workers started after %.1f s; "+
			"%d writes while restarting (%v)", workers.Seconds(), cost.Writes, cost.WritesByKind)})
	b.add(figure{Scenario: "5", Name: "cold start: workloads rolled again", Value: float64(rolled), Target: "0", Met: ptr(rolled == 0 && cost.TemplateWrites == 0),
		Note: fmt.Sprintf("Deployment generations changed over all %d bench Deployments: %d; template writes in the audit log: %d", len(generations), rolled, cost.TemplateWrites)})
	b.add(figure{Scenario: "5", Name: "operator peak RSS, cold start", Value: peak, Unit: "MiB"})
	if b.baselineRSS > 0 {
		b.add(figure{Scenario: "3", Name: "memory: the restarted operator's RSS over the same cluster", Value: fresh, Unit: "MiB",
			Baseline: fmt.Sprintf("controller-runtime default cache %.1f MiB", b.baselineRSS), BaselineValue: ptr(b.baselineRSS),
			Target: "<= 80 MiB", Met: ptr(fresh <= 80),
			Note: "VmRSS 5 s after every policy was current, as the baseline's 5 s after its caches synced: both fresh processes over the same objects; the RSS is " + freshParts})
	}
}

// checkForbidden fails the run when the operator's log shows a request its RBAC denied.
func (b *bench) checkForbidden() {
	logs, _ := filepath.Glob(filepath.Join(b.cluster.Dir, "logs", "operator*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if bytes.Contains(bytes.ToLower(line), []byte("forbidden")) {
				b.fail("the operator hit a permission the installer's RBAC does not grant (%s): %s", l, line)
				return
			}
		}
	}
}
