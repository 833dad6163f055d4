//go:build bench

// Command bench measures the operator at cluster scale (`make bench`, issue 13): it starts the
// local control plane (test/localcluster: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok nodes, the sidecar injector), makes kwok pods Ready after a realistic
// delay, runs the operator binary (bin/manager) as its own process with the installer's
// ServiceAccount, and measures each scenario side by side with its baseline in the same run:
//
//  1. converge N Deployments x 2 replicas under STRICT with maxConcurrent 50, against the floor
//     (a bare client-go function that patches the same templates keeping 50 rollouts in flight
//     and waits for each by kubectl's rollout-status rules; also all at once) and manual
//     (kubectl patch + kubectl rollout status, one at a time, on a sample, extrapolated);
//  2. an Unhealthy event storm over the pods of several policies, written as the kubelet's event
//     recorder writes them: how soon each status reflects the last event, status writes per
//     policy per 2 s;
//  3. memory: many namespaces, policies, workloads and Events; the operator's RSS against
//     controller-runtime's default cache of the same kinds (cache all, no transforms) run as a
//     process of its own (this binary again, BENCH_CACHE_BASELINE_KUBECONFIG);
//  4. idle: the operator's writes counted at the API server (kube-apiserver's audit log, a
//     policy that records the requests of ServiceAccounts) while nothing changes;
//  5. cold start: the operator restarted over the converged cluster of every scenario;
//  6. API cost during 1: template writes per workload, status writes per policy per 2 s,
//     Events, uncached reads (the audit log, cross-checked with the operator's own client-go
//     metrics, rest_client_requests_total, scraped from its metrics endpoint);
//  7. growth: scenario 1's convergence at each size of BENCH_GROWTH (100, 250, 500 and 1,000
//     at full size; off at small), with the slopes of time and peak RSS per workload.
//
// The operator's peak RSS (VmHWM in /proc/<pid>/status, reset through clear_refs at the start of
// each scenario) is reported for every scenario. The table goes to stdout, the figures to
// bench/results.json and the same as markdown to bench/results.md (BENCH_MARKDOWN=<results.json>
// prints a run's markdown again without running anything). BENCH_SCALE=small (a few minutes, for CI) or full (the size); the
// BENCH_* variables in params.go override single sizes.
package main
