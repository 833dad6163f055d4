//go:build bench

package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// params are the sizes of one run.
type params struct {
	Scale string `json:"scale"`
	// Workloads is N: the Deployments of scenario 1, in each of the operator's, the bounded
	// floor's and the unbounded floor's namespace.
	Workloads int `json:"workloads"`
	// Replicas per Deployment.
	Replicas int `json:"replicas"`
	// MaxConcurrent is the policy's spec.rollout.maxConcurrent and the floor's rollouts in flight.
	MaxConcurrent int `json:"maxConcurrent"`
	// Manual is how many workloads the manual baseline rolls (one at a time); the time for N is
	// extrapolated from them.
	Manual int `json:"manualSample"`
	// Idle is how long scenario 4 counts the operator's writes.
	Idle time.Duration `json:"-"`
	// ReadyDelay is how long kwok keeps a scheduled pod not Ready; ReadyJitter the most it adds.
	ReadyDelay  time.Duration `json:"-"`
	ReadyJitter time.Duration `json:"-"`
	// Mesh is the sidecar injector: "double" (test/meshdouble in the harness process) or "istio"
	// (bin/istio-injector, Istio's own injector).
	Mesh string `json:"mesh"`
	// Timeout bounds each wait.
	Timeout time.Duration `json:"-"`
	// ControllerManagerQPS is kube-controller-manager's client QPS (burst twice that); 0 keeps its
	// default of 20, which makes its Deployment and ReplicaSet controllers, not the pods'
	// readiness, the bottleneck of many rollouts at once on the local control plane.
	ControllerManagerQPS int `json:"controllerManagerQPS"`
	// Scenario 2, the Unhealthy event storm: StormEvents kubelet-style events (created, then
	// patched with a growing count, as the kubelet's recorder does) over StormDuration, spread over
	// the pods of StormPolicies policies, each selecting StormDeployments Deployments whose
	// templates are already redirected (nothing to roll).
	StormPolicies    int           `json:"stormPolicies"`
	StormDeployments int           `json:"stormDeploymentsPerPolicy"`
	StormEvents      int           `json:"stormEvents"`
	StormDuration    time.Duration `json:"-"`
	StormSeconds     float64       `json:"stormSeconds"`
	// Scenario 3, memory: MemNamespaces namespaces, each with a policy over MemWorkloads
	// Deployments (already redirected), and MemEvents Events about their pods, a tenth Unhealthy.
	MemNamespaces int `json:"memNamespaces"`
	MemWorkloads  int `json:"memWorkloadsPerNamespace"`
	MemEvents     int `json:"memEvents"`
	// Growth are scenario 7's sizes: the operator converges each in a namespace of its own.
	Growth []int `json:"growth,omitempty"`

	IdleSeconds       float64 `json:"idleSeconds"`
	ReadyDelaySeconds float64 `json:"readyDelaySeconds"`
	ReadyJitterSecs   float64 `json:"readyJitterSeconds"`
}

// loadParams reads BENCH_SCALE (small or full, default full) and the single overrides
// BENCH_WORKLOADS, BENCH_REPLICAS, BENCH_MAX_CONCURRENT, BENCH_MANUAL, BENCH_IDLE,
// BENCH_READY_DELAY, BENCH_MESH, BENCH_KCM_QPS, BENCH_TIMEOUT, BENCH_GROWTH and the BENCH_STORM_*
// and BENCH_MEM_* sizes.
func loadParams() (params, error) {
	p := params{Scale: os.Getenv("BENCH_SCALE"), Replicas: 2, MaxConcurrent: 50, Mesh: "double",
		ReadyDelay: 5 * time.Second, ReadyJitter: 500 * time.Millisecond, ControllerManagerQPS: 100}
	switch p.Scale {
	case "", "full":
		// The size: 500 Deployments x 2 replicas, a sample of 20 for manual, 10 idle minutes.
		p.Scale, p.Workloads, p.Manual, p.Idle, p.Timeout = "full", 500, 20, 10*time.Minute, 30*time.Minute
		// 20,000 events in 60 s over 2,000 pods of 20 policies.
		p.StormPolicies, p.StormDeployments, p.StormEvents, p.StormDuration = 20, 50, 20000, time.Minute
		// 10,000 workloads, 20,000 pods and 50,000 Events (5,000 Unhealthy) in 500 namespaces.
		p.MemNamespaces, p.MemWorkloads, p.MemEvents = 500, 20, 50000
		p.Growth = []int{100, 250, 500, 1000}
	case "small":
		// A few minutes on 2 CPUs: enough workloads for two waves at maxConcurrent 50.
		p.Workloads, p.Manual, p.Idle, p.Timeout = 60, 2, 20*time.Second, 4*time.Minute
		p.StormPolicies, p.StormDeployments, p.StormEvents, p.StormDuration = 2, 10, 1000, 20*time.Second
		p.MemNamespaces, p.MemWorkloads, p.MemEvents = 10, 20, 1000
	default:
		return p, fmt.Errorf("BENCH_SCALE=%q: want small or full", p.Scale)
	}
	for _, o := range []struct {
		env string
		to  *int
	}{{"BENCH_WORKLOADS", &p.Workloads}, {"BENCH_REPLICAS", &p.Replicas}, {"BENCH_MAX_CONCURRENT", &p.MaxConcurrent}, {"BENCH_MANUAL", &p.Manual},
		{"BENCH_KCM_QPS", &p.ControllerManagerQPS}, {"BENCH_STORM_POLICIES", &p.StormPolicies},
		{"BENCH_STORM_DEPLOYMENTS", &p.StormDeployments}, {"BENCH_STORM_EVENTS", &p.StormEvents},
		{"BENCH_MEM_NAMESPACES", &p.MemNamespaces}, {"BENCH_MEM_WORKLOADS", &p.MemWorkloads}, {"BENCH_MEM_EVENTS", &p.MemEvents}} {
		if v := os.Getenv(o.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (n == 0 && o.env != "BENCH_KCM_QPS") {
				return p, fmt.Errorf("%s=%q: want a positive integer", o.env, v)
			}
			*o.to = n
		}
	}
	for _, o := range []struct {
		env string
		to  *time.Duration
	}{{"BENCH_IDLE", &p.Idle}, {"BENCH_READY_DELAY", &p.ReadyDelay}, {"BENCH_TIMEOUT", &p.Timeout},
		{"BENCH_STORM_DURATION", &p.StormDuration}} {
		if v := os.Getenv(o.env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return p, fmt.Errorf("%s=%q: want a duration such as 30s", o.env, v)
			}
			*o.to = d
		}
	}
	p.ReadyJitter = p.ReadyDelay / 10
	if v := os.Getenv("BENCH_MESH"); v != "" {
		p.Mesh = v
	}
	if p.Mesh != "double" && p.Mesh != "istio" {
		return p, fmt.Errorf("BENCH_MESH=%q: want double or istio", p.Mesh)
	}
	if p.MaxConcurrent > 50 {
		return p, fmt.Errorf("BENCH_MAX_CONCURRENT=%d: the policy allows at most 50", p.MaxConcurrent)
	}
	p.Manual = min(p.Manual, p.Workloads)
	if v, ok := os.LookupEnv("BENCH_GROWTH"); ok {
		p.Growth = nil
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				return p, fmt.Errorf("BENCH_GROWTH=%q: want sizes such as 100,250,500,1000", v)
			}
			p.Growth = append(p.Growth, n)
		}
		sort.Ints(p.Growth)
	}
	if p.StormDuration <= 0 {
		return p, fmt.Errorf("BENCH_STORM_DURATION must be positive")
	}
	p.IdleSeconds, p.ReadyDelaySeconds, p.ReadyJitterSecs = p.Idle.Seconds(), p.ReadyDelay.Seconds(), p.ReadyJitter.Seconds()
	p.StormSeconds = p.StormDuration.Seconds()
	return p, nil
}

// Namespaces of the workload sets; each has its own fresh Deployments.
const (
	nsOperator = "bench-operator"
	nsFloor    = "bench-floor"
	nsFloorAll = "bench-floor-all"
	nsManual   = "bench-manual"
)

// podsPerNode is what localcluster's kwok nodes allocate.
const podsPerNode = 250

// set is one namespace of fresh Deployments.
type set struct {
	ns string
	n  int
	// redirected sets the operator's annotation on the templates at creation (scenario 2's
	// policies have nothing to roll).
	redirected bool
}

// growthNamespace is scenario 7's namespace for n workloads.
func growthNamespace(n int) string { return fmt.Sprintf("bench-growth-%04d", n) }

// stormNamespace is scenario 2's namespace i.
func stormNamespace(i int) string { return fmt.Sprintf("bench-storm-%02d", i) }

// sets are the namespaces and their Deployment counts.
func (p params) sets() []set {
	out := []set{{ns: nsOperator, n: p.Workloads}, {ns: nsFloor, n: p.Workloads}, {ns: nsFloorAll, n: p.Workloads}, {ns: nsManual, n: p.Manual}}
	for i := range p.StormPolicies {
		out = append(out, set{ns: stormNamespace(i), n: p.StormDeployments, redirected: true})
	}
	for i := range p.MemNamespaces {
		out = append(out, set{ns: memNamespace(i), n: p.MemWorkloads, redirected: true})
	}
	for _, n := range p.Growth {
		out = append(out, set{ns: growthNamespace(n), n: n})
	}
	return out
}

// deployments is how many Deployments the run creates.
func (p params) deployments() int {
	total := 0
	for _, s := range p.sets() {
		total += s.n
	}
	return total
}

// pods is the most pods the run holds at once: every set's replicas, plus one surge pod per
// Deployment rolling at once (maxSurge 25% of 2 replicas rounds up to 1; the unbounded floor rolls
// all N at once).
func (p params) pods() int {
	total := 0
	for _, s := range p.sets() {
		total += s.n * p.Replicas
	}
	return total + p.Workloads*max(1, (p.Replicas+3)/4)
}

// nodes is how many kwok nodes hold pods(), with a fifth to spare for the scheduler's spreading.
func (p params) nodes() int {
	return max(2, (p.pods()*6/5+podsPerNode-1)/podsPerNode)
}
