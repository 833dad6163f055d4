/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controllers

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// Metrics beyond controller-runtime's own, labelled by the policy's namespace and name. The
// gauges mirror status.summary and status.conditions; the counters count the rollout Events the
// operator records. The alerts in config/prometheus/rules.yaml are written over these.
//
// They are kept as a few numbers per policy and turned into series when Prometheus scrapes
// (policyCollector, the const-metric collector pattern of client_golang): a GaugeVec keeps each
// series with its label pairs and costs about a kilobyte per series, fourteen per policy.
var (
	policyLabels = []string{"namespace", "policy"}

	selectedWorkloadsDesc = prometheus.NewDesc("proberedirect_policy_selected_workloads",
		"Workloads the policy's selector matches.", policyLabels, nil)
	rewrittenProbesDesc = prometheus.NewDesc("proberedirect_policy_rewritten_probes",
		"Probes verified as rewritten on every current pod.", policyLabels, nil)
	pendingProbesDesc = prometheus.NewDesc("proberedirect_policy_pending_probes",
		"Probes that need redirecting and are not rewritten yet.", policyLabels, nil)
	pendingProbesChangedDesc = prometheus.NewDesc("proberedirect_policy_pending_probes_last_change_timestamp_seconds",
		"Unix time at which this operator process saw the policy's pending probe count change, or first saw the policy.", policyLabels, nil)
	unhealthyPodsDesc = prometheus.NewDesc("proberedirect_policy_unhealthy_pods",
		"Pods of selected workloads with kubelet Unhealthy events within the window.", policyLabels, nil)
	rolloutDeadlineDesc = prometheus.NewDesc("proberedirect_policy_rollout_deadline_seconds",
		"How long one workload's rollout may take before it counts as failed (spec.rollout.progressDeadlineSeconds or its default).", policyLabels, nil)
	// policyConditionDesc follows kube-state-metrics' kube_<kind>_status_condition, with the
	// reason as a label: one series per condition type, for its current status and reason.
	policyConditionDesc = prometheus.NewDesc("proberedirect_policy_condition",
		"The policy's conditions: 1 for the current status and reason of each of the operator's condition types.",
		[]string{"namespace", "policy", "type", "status", "reason"}, nil)
	rolloutsStartedDesc = prometheus.NewDesc("proberedirect_rollouts_started_total",
		"Rollouts the policy started by annotating a workload, or by removing its annotation on deletion.", policyLabels, nil)
	rolloutsCompletedDesc = prometheus.NewDesc("proberedirect_rollouts_completed_total",
		"Rollouts started by the policy that completed.", policyLabels, nil)
	rolloutsFailedDesc = prometheus.NewDesc("proberedirect_rollouts_failed_total",
		"Rollouts started by the policy that missed their deadline.", policyLabels, nil)

	policies = &policyCollector{exported: map[types.NamespacedName]*exported{}}
)

func init() {
	metrics.Registry.MustRegister(policies)
}

// exported is what the operator exports of one policy.
type exported struct {
	selected, rewritten, pending, unhealthy int32
	// deadline is the rollout deadline in seconds; pendingChanged is when pending last changed,
	// in Unix seconds.
	deadline, pendingChanged float64
	// started, completed and failed are the counters' values.
	started, completed, failed float64
	conditions                 []conditionSeries
}

// conditionSeries names one series of proberedirect_policy_condition of a policy.
type conditionSeries struct{ conditionType, status, reason string }

// policyCollector exports every policy's metrics at scrape time; reconciles of different
// policies update it concurrently.
type policyCollector struct {
	mu       sync.Mutex
	exported map[types.NamespacedName]*exported
}

var policyDescs = []*prometheus.Desc{selectedWorkloadsDesc, rewrittenProbesDesc, pendingProbesDesc, pendingProbesChangedDesc,
	unhealthyPodsDesc, rolloutDeadlineDesc, policyConditionDesc, rolloutsStartedDesc, rolloutsCompletedDesc, rolloutsFailedDesc}

// Describe sends the descriptors of every metric the collector exports.
func (c *policyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range policyDescs {
		ch <- d
	}
}

// Collect sends every policy's series.
func (c *policyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.exported {
		ns, name := key.Namespace, key.Name
		for _, m := range []struct {
			desc  *prometheus.Desc
			kind  prometheus.ValueType
			value float64
		}{
			{selectedWorkloadsDesc, prometheus.GaugeValue, float64(e.selected)},
			{rewrittenProbesDesc, prometheus.GaugeValue, float64(e.rewritten)},
			{pendingProbesDesc, prometheus.GaugeValue, float64(e.pending)},
			{pendingProbesChangedDesc, prometheus.GaugeValue, e.pendingChanged},
			{unhealthyPodsDesc, prometheus.GaugeValue, float64(e.unhealthy)},
			{rolloutDeadlineDesc, prometheus.GaugeValue, e.deadline},
			{rolloutsStartedDesc, prometheus.CounterValue, e.started},
			{rolloutsCompletedDesc, prometheus.CounterValue, e.completed},
			{rolloutsFailedDesc, prometheus.CounterValue, e.failed},
		} {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value, ns, name)
		}
		for _, cs := range e.conditions {
			ch <- prometheus.MustNewConstMetric(policyConditionDesc, prometheus.GaugeValue, 1, ns, name, cs.conditionType, cs.status, cs.reason)
		}
	}
}

// recordMetrics updates the policy's metrics from the outcome of one reconcile at now. The
// counters exist from the first reconcile on, at 0, so that increase() sees the first rollout
// that fails; a condition has one series, for its current status and reason.
func recordMetrics(p *v1alpha1.ProbeRedirectPolicy, outcome plan.Outcome, now time.Time) {
	summary := outcome.Status.Summary
	policies.mu.Lock()
	defer policies.mu.Unlock()
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	e, seen := policies.exported[key]
	if !seen {
		e = &exported{}
		policies.exported[key] = e
	}
	if !seen || e.pending != summary.PendingProbes {
		e.pendingChanged = float64(now.Unix())
	}
	e.selected, e.rewritten, e.pending, e.unhealthy = summary.SelectedWorkloads, summary.RewrittenProbes, summary.PendingProbes, summary.UnhealthyPods
	e.deadline = plan.ProgressDeadline(p.Spec).Seconds()
	for _, ev := range outcome.Events {
		switch ev.Reason {
		case v1alpha1.EventRolloutStarted, v1alpha1.EventRestored:
			// A restore starts a rollout too; its completion and failure are counted below.
			e.started++
		case v1alpha1.EventRolloutComplete:
			e.completed++
		case v1alpha1.EventRolloutFailed:
			e.failed++
		}
	}
	e.conditions = e.conditions[:0]
	for _, c := range plan.OwnConditions(outcome.Status.Conditions) {
		e.conditions = append(e.conditions, conditionSeries{conditionType: c.Type, status: string(c.Status), reason: c.Reason})
	}
}

// forgetMetrics drops a deleted policy's series.
func forgetMetrics(namespace, name string) {
	policies.mu.Lock()
	defer policies.mu.Unlock()
	delete(policies.exported, types.NamespacedName{Namespace: namespace, Name: name})
}
