package prometheus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// ruleTestFile is a unit test file in the format of `promtool test rules`
// (Prometheus docs, configuration/unit_testing_rules.md). This harness runs the part of the
// format the operator's tests use; a field outside it is an error, never silently ignored.
type ruleTestFile struct {
	// RuleFiles are relative to the test file. A file may be a Prometheus rule file or a
	// Prometheus Operator PrometheusRule, whose spec is the rule file.
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval model.Duration  `yaml:"evaluation_interval"`
	Tests              []ruleTestGroup `yaml:"tests"`
}

// ruleTestGroup is input series and the alerts expected from them.
type ruleTestGroup struct {
	Name string `yaml:"name"`
	// Interval is the step of the input series; it defaults to the evaluation interval.
	Interval       model.Duration  `yaml:"interval"`
	InputSeries    []inputSeries   `yaml:"input_series"`
	AlertRuleTests []alertRuleTest `yaml:"alert_rule_test"`
}

// inputSeries is one series in PromQL's test notation: `metric{label="v"}` and values such as
// `0+1x10`, `1x5 stale` or `_x3 1`.
type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// alertRuleTest lists the alerts of one name that fire at EvalTime; none for "must not fire".
type alertRuleTest struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []expAlert     `yaml:"exp_alerts"`
}

// expAlert is a firing alert: its labels (without alertname) and all its annotations.
type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// readRuleTestFile decodes a test file strictly and resolves its rule files.
func readRuleTestFile(t *testing.T, path string) ruleTestFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleTestFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	for i, rf := range f.RuleFiles {
		if !filepath.IsAbs(rf) {
			rf = filepath.Join(filepath.Dir(path), rf)
		}
		abs, err := filepath.Abs(rf)
		if err != nil {
			t.Fatal(err)
		}
		f.RuleFiles[i] = abs
	}
	return f
}

// prometheusRuleFiles returns the rule files as Prometheus reads them: a PrometheusRule's spec
// is written to a temporary file, a plain rule file is used as it is.
func prometheusRuleFiles(t *testing.T, paths []string) []string {
	t.Helper()
	out := make([]string, 0, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			APIVersion string    `yaml:"apiVersion"`
			Kind       string    `yaml:"kind"`
			Spec       yaml.Node `yaml:"spec"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc.Kind != "PrometheusRule" {
			out = append(out, path)
			continue
		}
		if doc.APIVersion != "monitoring.coreos.com/v1" {
			t.Fatalf("%s: PrometheusRule has apiVersion %q, want monitoring.coreos.com/v1", path, doc.APIVersion)
		}
		spec, err := yaml.Marshal(&doc.Spec)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(file, spec, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, file)
	}
	return out
}

// loadRuleGroups loads rule files with Prometheus's rule manager, which parses them strictly
// (unknown fields are errors), parses every expression and checks every template.
func loadRuleGroups(t *testing.T, opts *rules.ManagerOptions, interval time.Duration, files []string) []*rules.Group {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = promslog.NewNopLogger()
	}
	if opts.NotifyFunc == nil {
		opts.NotifyFunc = func(context.Context, string, ...*rules.Alert) {}
	}
	groupsByName, errs := rules.NewManager(opts).LoadGroups(interval, labels.EmptyLabels(), "", nil, false, files...)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	groups := make([]*rules.Group, 0, len(groupsByName))
	for _, g := range groupsByName {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name() < groups[j].Name() })
	return groups
}

// runRuleTestFile runs each test group of the file as a subtest.
func runRuleTestFile(t *testing.T, path string) {
	f := readRuleTestFile(t, path)
	files := prometheusRuleFiles(t, f.RuleFiles)
	for i, tg := range f.Tests {
		name := tg.Name
		if name == "" {
			name = fmt.Sprintf("group%d", i)
		}
		t.Run(name, func(t *testing.T) {
			runRuleTestGroup(t, tg, time.Duration(f.EvaluationInterval), files)
		})
	}
}

// runRuleTestGroup loads the input series into Prometheus's test storage, evaluates every rule
// group at each evaluation interval from time 0 up to the last eval_time, as the rule manager
// would, and compares the firing alerts with the expected ones at each eval_time.
func runRuleTestGroup(t *testing.T, tg ruleTestGroup, evalInterval time.Duration, ruleFiles []string) {
	if tg.Interval == 0 {
		tg.Interval = model.Duration(evalInterval)
	}
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", tg.Interval)
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	storage, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		t.Fatalf("input_series: %v", err)
	}
	t.Cleanup(func() {
		if err := storage.Close(); err != nil {
			t.Error(err)
		}
	})
	storage.SubqueryInterval = evalInterval

	groups := loadRuleGroups(t, &rules.ManagerOptions{
		QueryFunc:  rules.EngineQueryFunc(storage.QueryEngine(), storage.Storage()),
		Appendable: storage.Storage(),
		Context:    context.Background(),
	}, evalInterval, ruleFiles)
	alerting := map[string]*rules.AlertingRule{}
	for _, g := range groups {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				// As after a restart whose state was restored: the ALERTS series are written from
				// the first evaluation.
				ar.SetRestored(true)
				alerting[ar.Name()] = ar
			}
		}
	}

	byTime := map[time.Duration][]alertRuleTest{}
	var last time.Duration
	for _, at := range tg.AlertRuleTests {
		if _, ok := alerting[at.Alertname]; !ok {
			// A misspelt name would make a "must not fire" case pass for nothing.
			t.Errorf("alert_rule_test names %q, which no rule file defines", at.Alertname)
			continue
		}
		evalTime := time.Duration(at.EvalTime)
		byTime[evalTime] = append(byTime[evalTime], at)
		last = max(last, evalTime)
	}
	times := make([]time.Duration, 0, len(byTime))
	for at := range byTime {
		times = append(times, at)
	}
	slices.Sort(times)

	epoch := time.Unix(0, 0).UTC()
	next := 0
	for step := time.Duration(0); step <= last; step += evalInterval {
		ts := epoch.Add(step)
		storage.WithSamplesTill(ts, func(err error) {
			if err != nil {
				t.Fatalf("loading samples up to %s: %v", step, err)
			}
			for _, g := range groups {
				g.Eval(storage.Context(), ts)
				for _, r := range g.Rules() {
					if err := r.LastError(); err != nil {
						t.Fatalf("rule %s at %s: %v", r.Name(), step, err)
					}
				}
			}
		})
		// An eval_time between two evaluations sees the earlier one, as in promtool.
		for ; next < len(times) && times[next] < step+evalInterval; next++ {
			for _, at := range byTime[times[next]] {
				compareAlerts(t, at, alerting[at.Alertname])
			}
		}
	}
}

// compareAlerts compares the rule's firing alerts with the expected ones.
func compareAlerts(t *testing.T, at alertRuleTest, rule *rules.AlertingRule) {
	t.Helper()
	var got, want []string
	for _, a := range rule.ActiveAlerts() {
		if a.State == rules.StateFiring {
			got = append(got, describeAlert(a.Labels, a.Annotations))
		}
	}
	for _, exp := range at.ExpAlerts {
		lbls := map[string]string{labels.AlertName: at.Alertname}
		for k, v := range exp.ExpLabels {
			lbls[k] = v
		}
		want = append(want, describeAlert(labels.FromMap(lbls), labels.FromMap(exp.ExpAnnotations)))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s at %s:\nwant %d firing:\n%s\ngot %d firing:\n%s", at.Alertname, at.EvalTime,
			len(want), strings.Join(want, "\n"), len(got), strings.Join(got, "\n"))
	}
}

// describeAlert renders an alert's labels and annotations one per line, for comparing and for
// reading a failure.
func describeAlert(lbls, annotations labels.Labels) string {
	var b strings.Builder
	b.WriteString("  " + lbls.String() + "\n")
	annotations.Range(func(l labels.Label) {
		fmt.Fprintf(&b, "    %s: %q\n", l.Name, l.Value)
	})
	return b.String()
}
