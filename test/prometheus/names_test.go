package prometheus

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promQL parses as a Prometheus server does by default: no experimental functions or syntax.
var promQL = parser.NewParser(parser.Options{})

// targetLabels are the labels Prometheus adds from the scrape target (a ServiceMonitor's
// endpoint); the operator's own namespace label wins over the target's (honorLabels).
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

// checkedValues are the labels whose values a query must take from what the operator serves:
// the controller's and its work queue's name. Condition types and reasons vary with the
// policies' states, so the unit tests check those.
var checkedValues = []string{"controller", "name"}

// TestAlertsQueryOnlyServedMetrics: every series an alert selects is one the operator serves.
func TestAlertsQueryOnlyServedMetrics(t *testing.T) {
	served := servedMetrics(t)
	for _, a := range shippedAlerts(t) {
		for _, err := range unservedSelectors(a.Query(), served) {
			t.Errorf("alert %s: %v", a.Name(), err)
		}
	}
}

// unservedSelectors returns an error for each vector selector in expr that names no metric the
// operator serves, or matches on a label or value it does not serve.
func unservedSelectors(expr parser.Expr, served map[string]servedFamily) []error {
	var errs []error
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name == "" {
			errs = append(errs, fmt.Errorf("%s: no metric name", vs))
			return nil
		}
		family, bucket, ok := familyOf(vs.Name, served)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: the operator serves no metric %s", vs, vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				continue
			}
			values, known := family.Labels[m.Name]
			switch {
			case !known && !slices.Contains(targetLabels, m.Name) && (m.Name != "le" || !bucket):
				errs = append(errs, fmt.Errorf("%s: %s has no label %s", vs, vs.Name, m.Name))
			case slices.Contains(checkedValues, m.Name) && m.Type == labels.MatchEqual && !values[m.Value]:
				errs = append(errs, fmt.Errorf("%s: %s serves no %s=%q", vs, vs.Name, m.Name, m.Value))
			}
		}
		return nil
	})
	return errs
}

// familyOf finds the family a series name belongs to: itself, or a histogram's or summary's
// _bucket, _sum and _count. bucket is true for a histogram's _bucket series.
func familyOf(name string, served map[string]servedFamily) (family servedFamily, bucket, ok bool) {
	if f, ok := served[name]; ok && f.Type != dto.MetricType_HISTOGRAM {
		return f, false, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suffix)
		if !found {
			continue
		}
		f, ok := served[base]
		if !ok {
			continue
		}
		switch {
		case f.Type == dto.MetricType_HISTOGRAM:
			return f, suffix == "_bucket", true
		case f.Type == dto.MetricType_SUMMARY && suffix != "_bucket":
			return f, false, true
		}
	}
	return servedFamily{}, false, false
}
