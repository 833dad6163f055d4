// Package prometheus checks the operator's alerts (config/prometheus/rules.yaml) and Grafana
// dashboard (config/grafana/) with Prometheus's own code: its rule-file parser and rule manager,
// its PromQL parser and engine, and its series notation for test input.
//
// It is a Go module of its own, so that Prometheus's many dependencies stay out of the
// operator's. `make test-prometheus` runs it.
package prometheus
