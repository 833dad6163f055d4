package prometheus

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/rules"
)

// rulesTestFile holds the unit tests of the alerts, in `promtool test rules` format.
const rulesTestFile = "testdata/rules_test.yaml"

// shippedRules is the PrometheusRule the operator ships.
func shippedRules() string {
	return filepath.Join(repoRoot(), "config", "prometheus", "rules.yaml")
}

// shippedAlerts loads the shipped PrometheusRule with Prometheus's rule manager: the file is
// read strictly, and every expression is parsed and every template checked on the way.
func shippedAlerts(t *testing.T) []*rules.AlertingRule {
	t.Helper()
	var alerts []*rules.AlertingRule
	for _, g := range loadRuleGroups(t, &rules.ManagerOptions{}, time.Minute, prometheusRuleFiles(t, []string{shippedRules()})) {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok {
				t.Errorf("group %s: %s is not an alert; the file holds alerts only", g.Name(), r.Name())
				continue
			}
			alerts = append(alerts, ar)
		}
	}
	return alerts
}

// TestAlertRules runs the alerts' unit tests through Prometheus's rule evaluation.
func TestAlertRules(t *testing.T) {
	runRuleTestFile(t, rulesTestFile)
}

// TestEveryAlertIsActionableAndTested: each alert says how urgent it is and what to do, and the
// unit tests show it firing and, in another case, not firing.
func TestEveryAlertIsActionableAndTested(t *testing.T) {
	tests := readRuleTestFile(t, rulesTestFile)
	if !slices.Contains(tests.RuleFiles, shippedRules()) {
		t.Fatalf("%s does not test %s (rule_files: %v)", rulesTestFile, shippedRules(), tests.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tg := range tests.Tests {
		for _, at := range tg.AlertRuleTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				silent[at.Alertname] = true
			}
		}
	}

	alerts := shippedAlerts(t)
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
	for _, a := range alerts {
		name := a.Name()
		if s := a.Labels().Get("severity"); s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", name, s)
		}
		for _, annotation := range []string{"summary", "description"} {
			if a.Annotations().Get(annotation) == "" {
				t.Errorf("%s: no %s annotation", name, annotation)
			}
		}
		if !strings.Contains(a.Annotations().Get("description"), "kubectl ") {
			t.Errorf("%s: the description names no kubectl command to start from", name)
		}
		if !fires[name] {
			t.Errorf("%s: no unit test expects it to fire", name)
		}
		if !silent[name] {
			t.Errorf("%s: no unit test expects it to stay silent", name)
		}
	}
}
