//go:build bench

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured figure with its baseline from the same run and the target.
type figure struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Baseline describes the baseline measured in the same run; BaselineValue is its number.
	Baseline      string   `json:"baseline,omitempty"`
	BaselineValue *float64 `json:"baselineValue,omitempty"`
	// Target is the target for this figure; Met is nil when it has none.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	Note   string `json:"note,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func (f figure) value() string {
	switch f.Unit {
	case "s":
		return fmt.Sprintf("%.1f s", f.Value)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", f.Value)
	case "x":
		return fmt.Sprintf("%.2fx", f.Value)
	case "":
		if f.Value == float64(int64(f.Value)) {
			return fmt.Sprintf("%d", int64(f.Value))
		}
		return fmt.Sprintf("%.2f", f.Value)
	default:
		if f.Value == float64(int64(f.Value)) {
			return fmt.Sprintf("%d %s", int64(f.Value), f.Unit)
		}
		return fmt.Sprintf("%.2f %s", f.Value, f.Unit)
	}
}

func (f figure) met() string {
	switch {
	case f.Met == nil:
		return "-"
	case *f.Met:
		return "yes"
	default:
		return "NO"
	}
}

// machine is where the run happened.
type machine struct {
	CPU      string `json:"cpu"`
	CPUs     int    `json:"cpus"`
	MemTotal string `json:"memTotal"`
	Kernel   string `json:"kernel,omitempty"`
}

func readMachine() machine {
	var m machine
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				m.CPUs++
			case "model name":
				m.CPU = strings.TrimSpace(v)
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb float64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f", &kb); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// commit is the repository's HEAD, with "-dirty" when the work tree has changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}

// results is bench/results.json.
type results struct {
	Date     time.Time `json:"date"`
	Machine  machine   `json:"machine"`
	Commit   string    `json:"commit"`
	Scale    string    `json:"scale"`
	Params   params    `json:"params"`
	Setup    setup     `json:"setup"`
	Figures  []figure  `json:"figures"`
	APICost  *apiCost  `json:"apiCostScenario1,omitempty"`
	Missing  []string  `json:"notMeasured"`
	Seconds  float64   `json:"runSeconds"`
	Failures []string  `json:"failures,omitempty"`
}

// setup is the cluster the run used.
type setup struct {
	Nodes        int    `json:"kwokNodes"`
	PodsPerNode  int    `json:"podsPerNode"`
	PeakPods     int    `json:"plannedPeakPods"`
	Deployments  int    `json:"deployments"`
	Mesh         string `json:"mesh"`
	Operator     string `json:"operator"`
	OperatorArgs string `json:"operatorArgs"`
	APICounting  string `json:"apiCounting"`
	ReadyDelay   string `json:"readyDelay"`
	// ControllerManager says how kube-controller-manager's client limits were set.
	ControllerManager string `json:"controllerManager"`
}

func (r *results) print(out io.Writer) {
	w := &errWriter{w: out}
	w.printf("\nprobe-redirect-operator benchmark, scale %s, %s\n", r.Scale, r.Date.Format(time.RFC3339))
	w.printf("machine: %s x%d, %s RAM; commit %s\n", r.Machine.CPU, r.Machine.CPUs, r.Machine.MemTotal, r.Commit)
	w.printf("cluster: %d kwok nodes x %d pods (planned peak %d pods, %d Deployments x %d replicas); pods Ready %s after scheduling; injector: %s\n",
		r.Setup.Nodes, r.Setup.PodsPerNode, r.Setup.PeakPods, r.Setup.Deployments, r.Params.Replicas, r.Setup.ReadyDelay, r.Setup.Mesh)
	w.printf("kube-controller-manager: %s\n", r.Setup.ControllerManager)
	w.printf("operator: %s %s\n\n", r.Setup.Operator, r.Setup.OperatorArgs)
	table := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	tw := &errWriter{w: table}
	tw.printf("#\tfigure\tvalue\tbaseline (same run)\ttarget\tmet\n")
	for _, f := range r.Figures {
		tw.printf("%s\t%s\t%s\t%s\t%s\t%s\n", f.Scenario, f.Name, f.value(), dash(f.Baseline), dash(f.Target), f.met())
	}
	_ = table.Flush()
	met, targets := r.targetsMet()
	w.printf("\n%d of %d targets met. Notes:\n", met, targets)
	for _, f := range r.Figures {
		if f.Note != "" {
			w.printf("  [%s] %s: %s\n", f.Scenario, f.Name, f.Note)
		}
	}
	w.printf("API counting: %s\n", r.Setup.APICounting)
	w.printf("Not measured in this run:\n")
	for _, m := range r.Missing {
		w.printf("  - %s\n", m)
	}
	for _, f := range r.Failures {
		w.printf("FAILED: %s\n", f)
	}
	w.printf("run took %.0f s\n", r.Seconds)
}

// targetsMet counts the figures that have a target, and those of them met.
func (r *results) targetsMet() (met, targets int) {
	for _, f := range r.Figures {
		if f.Met != nil {
			targets++
			if *f.Met {
				met++
			}
		}
	}
	return met, targets
}

// errWriter is a writer for the report whose write errors are ignored (stdout).
type errWriter struct{ w io.Writer }

func (e *errWriter) Write(p []byte) (int, error) { return e.w.Write(p) }

func (e *errWriter) printf(format string, args ...any) { _, _ = fmt.Fprintf(e.w, format, args...) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	r.markdown(&md)
	return os.WriteFile(strings.TrimSuffix(path, ".json")+".md", []byte(md.String()), 0o644)
}

// renderMarkdown prints, as markdown, the results a run wrote to path (BENCH_MARKDOWN).
func renderMarkdown(path string, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r := &results{}
	if err := json.Unmarshal(data, r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r.markdown(out)
	return nil
}

// markdown writes the run as docs/benchmarks.md holds it: where and how it ran, one table of
// every figure with its baseline and target, the notes, and what the run did not measure.
func (r *results) markdown(out io.Writer) {
	w := &errWriter{w: out}
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	w.printf("## Scale %s, %s\n\n", r.Scale, r.Date.Format("2006-01-02"))
	w.printf("- **Machine**: %s x%d, %s RAM, Linux %s\n", r.Machine.CPU, r.Machine.CPUs, r.Machine.MemTotal, r.Machine.Kernel)
	w.printf("- **Commit**: `%s`\n", r.Commit)
	w.printf("- **Cluster**: %d kwok nodes x %d pods (planned peak %d pods, %d Deployments x %d replicas); pods Ready %s after scheduling; injector: %s\n",
		r.Setup.Nodes, r.Setup.PodsPerNode, r.Setup.PeakPods, r.Setup.Deployments, r.Params.Replicas, r.Setup.ReadyDelay, r.Setup.Mesh)
	w.printf("- **kube-controller-manager**: %s\n", r.Setup.ControllerManager)
	w.printf("- **Operator**: %s\n", r.Setup.OperatorArgs)
	w.printf("- **API counting**: %s\n", r.Setup.APICounting)
	w.printf("- **Run time**: %.0f s\n\n", r.Seconds)
	w.printf("| # | figure | value | baseline (same run) | target | met |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		w.printf("| %s | %s | %s | %s | %s | %s |\n", f.Scenario, cell(f.Name), f.value(), cell(dash(f.Baseline)), cell(dash(f.Target)), f.met())
	}
	met, targets := r.targetsMet()
	w.printf("\n%d of %d targets met.\n\nNotes:\n\n", met, targets)
	for _, f := range r.Figures {
		if f.Note != "" {
			w.printf("- [%s] %s: %s\n", f.Scenario, cell(f.Name), cell(f.Note))
		}
	}
	w.printf("\nNot measured in this run:\n\n")
	for _, m := range r.Missing {
		w.printf("- %s\n", cell(m))
	}
	for _, f := range r.Failures {
		w.printf("- FAILED: %s\n", cell(f))
	}
}
