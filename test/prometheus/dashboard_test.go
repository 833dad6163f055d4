package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// dashboard is the part of Grafana's dashboard JSON model the test reads.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	// Query is the data source's query: a string for a datasource variable, an object for a
	// Prometheus query variable.
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	// Panels holds the panels of a collapsed row.
	Panels []panel `json:"panels"`
}

// grafanaVariable is a variable reference: $name, ${name} or ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// builtinDurations stand in for Grafana's interval variables, as Grafana fills them in.
var builtinDurations = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}

// labelValues is a Prometheus query variable: label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "config", "grafana", "probe-redirect-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboardQueriesParseAndNameServedMetrics: every query of the dashboard, with Grafana's
// variables filled in, parses as PromQL and selects only what the operator serves; every panel
// reads from the dashboard's data source variable.
func TestDashboardQueriesParseAndNameServedMetrics(t *testing.T) {
	d := readDashboard(t)
	served := servedMetrics(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed to import and link the dashboard", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: want 39 (Grafana 11) or later", d.SchemaVersion)
	}

	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
		switch v.Type {
		case "datasource":
			var query string
			if err := json.Unmarshal(v.Query, &query); err != nil || query != "prometheus" {
				t.Errorf("variable %s: query %s, want \"prometheus\"", v.Name, v.Query)
			}
		case "query":
			checkDataSource(t, "variable "+v.Name, v.Datasource)
			checkLabelValues(t, v, served)
		}
	}
	for _, name := range []string{"datasource", "namespace", "policy"} {
		if !defined[name] {
			t.Errorf("no %s variable", name)
		}
	}

	ids := map[int]string{}
	queries := 0
	for _, p := range flatten(d.Panels) {
		if other, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q have the same id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %q", p.Title)
		checkDataSource(t, where, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		refs := map[string]bool{}
		for _, target := range p.Targets {
			where := fmt.Sprintf("panel %q, query %s", p.Title, target.RefID)
			if refs[target.RefID] {
				t.Errorf("%s: refId used twice", where)
			}
			refs[target.RefID] = true
			checkDataSource(t, where, target.Datasource)
			checkQuery(t, where, target.Expr, defined, served)
			queries++
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

// flatten returns the panels with the panels of collapsed rows.
func flatten(panels []panel) []panel {
	var out []panel
	for _, p := range panels {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func checkDataSource(t *testing.T, where string, ds *datasource) {
	t.Helper()
	if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
		t.Errorf("%s: datasource %+v, want the ${datasource} variable of type prometheus", where, ds)
	}
}

// checkQuery fills in the variables of a query, parses it and checks its selectors.
func checkQuery(t *testing.T, where, query string, defined map[string]bool, served map[string]servedFamily) {
	t.Helper()
	if query == "" {
		t.Errorf("%s: empty query", where)
		return
	}
	filled := grafanaVariable.ReplaceAllStringFunc(query, func(ref string) string {
		m := grafanaVariable.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if d, ok := builtinDurations[name]; ok {
			return d
		}
		if !defined[name] {
			t.Errorf("%s: $%s is not a variable of the dashboard", where, name)
		}
		// The namespace and policy variables are multi-value, matched with =~.
		return ".*"
	})
	expr, err := promQL.ParseExpr(filled)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, filled)
		return
	}
	for _, err := range unservedSelectors(expr, served) {
		t.Errorf("%s: %v", where, err)
	}
}

// checkLabelValues checks a label_values(selector, label) variable: the selector parses and
// selects what the operator serves, with the label.
func checkLabelValues(t *testing.T, v variable, served map[string]servedFamily) {
	t.Helper()
	where := "variable " + v.Name
	var query struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &query); err != nil {
		t.Errorf("%s: query %s: %v", where, v.Query, err)
		return
	}
	if query.Query != v.Definition {
		t.Errorf("%s: query %q and definition %q differ", where, query.Query, v.Definition)
	}
	m := labelValues.FindStringSubmatch(query.Query)
	if m == nil {
		t.Errorf("%s: %q is not label_values(selector, label)", where, query.Query)
		return
	}
	checkQuery(t, where, m[1], map[string]bool{"namespace": true, "policy": true}, served)
	expr, err := promQL.ParseExpr(grafanaVariable.ReplaceAllString(m[1], ".*"))
	if err != nil {
		return // reported by checkQuery
	}
	if vs, ok := expr.(*parser.VectorSelector); ok {
		if family, _, ok := familyOf(vs.Name, served); ok && family.Labels[m[2]] == nil {
			t.Errorf("%s: %s has no label %s", where, vs.Name, m[2])
		}
	} else {
		t.Errorf("%s: %q is not a series selector", where, m[1])
	}
}
