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
	"slices"
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
var (
	policyLabels = []string{"namespace", "policy"}

	selectedWorkloads = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_selected_workloads",
		Help: "Workloads the policy's selector matches.",
	}, policyLabels)
	rewrittenProbes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_rewritten_probes",
		Help: "Probes verified as rewritten on every current pod.",
	}, policyLabels)
	pendingProbes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_pending_probes",
		Help: "Probes that need redirecting and are not rewritten yet.",
	}, policyLabels)
	pendingProbesChanged = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_pending_probes_last_change_timestamp_seconds",
		Help: "Unix time at which this operator process saw the policy's pending probe count change, or first saw the policy.",
	}, policyLabels)
	unhealthyPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_unhealthy_pods",
		Help: "Pods of selected workloads with kubelet Unhealthy events within the window.",
	}, policyLabels)
	rolloutDeadline = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_rollout_deadline_seconds",
		Help: "How long one workload's rollout may take before it counts as failed (spec.rollout.progressDeadlineSeconds or its default).",
	}, policyLabels)
	// policyCondition follows kube-state-metrics' kube_<kind>_status_condition, with the reason
	// as a label: one series per condition type, for its current status and reason.
	policyCondition = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_condition",
		Help: "The policy's conditions: 1 for the current status and reason of each of the operator's condition types.",
	}, []string{"namespace", "policy", "type", "status", "reason"})
	rolloutsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proberedirect_rollouts_started_total",
		Help: "Rollouts the policy started by annotating a workload, or by removing its annotation on deletion.",
	}, policyLabels)
	rolloutsCompleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proberedirect_rollouts_completed_total",
		Help: "Rollouts started by the policy that completed.",
	}, policyLabels)
	rolloutsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proberedirect_rollouts_failed_total",
		Help: "Rollouts started by the policy that missed their deadline.",
	}, policyLabels)

	// policyVecs are the metrics with one series per policy, dropped together by forgetMetrics.
	policyVecs = []*prometheus.MetricVec{selectedWorkloads.MetricVec, rewrittenProbes.MetricVec,
		pendingProbes.MetricVec, pendingProbesChanged.MetricVec, unhealthyPods.MetricVec, rolloutDeadline.MetricVec,
		rolloutsStarted.MetricVec, rolloutsCompleted.MetricVec, rolloutsFailed.MetricVec}
)

func init() {
	metrics.Registry.MustRegister(selectedWorkloads, rewrittenProbes, pendingProbes, pendingProbesChanged,
		unhealthyPods, rolloutDeadline, policyCondition, rolloutsStarted, rolloutsCompleted, rolloutsFailed)
}

// exported is what recordMetrics last exported for one policy that it needs again: the
// pending count, to see it change, and the condition series, to delete one when its status or
// reason changes.
type exported struct {
	pending    int32
	conditions []conditionSeries
}

// conditionSeries names one series of proberedirect_policy_condition of a policy; kept as three
// strings, not as its label map, since the operator keeps one for each condition of every policy.
type conditionSeries struct{ conditionType, status, reason string }

func (c conditionSeries) labels(p types.NamespacedName) prometheus.Labels {
	return prometheus.Labels{"namespace": p.Namespace, "policy": p.Name, "type": c.conditionType, "status": c.status, "reason": c.reason}
}

var (
	exportedMu sync.Mutex
	// exportedFor is keyed by the policy; reconciles of different policies run concurrently.
	exportedFor = map[types.NamespacedName]exported{}
)

// recordMetrics updates the policy's metrics from the outcome of one reconcile at now.
func recordMetrics(p *v1alpha1.ProbeRedirectPolicy, outcome plan.Outcome, now time.Time) {
	labels := prometheus.Labels{"namespace": p.Namespace, "policy": p.Name}
	summary := outcome.Status.Summary
	selectedWorkloads.With(labels).Set(float64(summary.SelectedWorkloads))
	rewrittenProbes.With(labels).Set(float64(summary.RewrittenProbes))
	pendingProbes.With(labels).Set(float64(summary.PendingProbes))
	unhealthyPods.With(labels).Set(float64(summary.UnhealthyPods))
	rolloutDeadline.With(labels).Set(plan.ProgressDeadline(p.Spec).Seconds())
	// The counters exist from the first reconcile on, at 0, so that increase() sees the first
	// rollout that fails.
	started, completed, failed := rolloutsStarted.With(labels), rolloutsCompleted.With(labels), rolloutsFailed.With(labels)
	for _, e := range outcome.Events {
		switch e.Reason {
		case v1alpha1.EventRolloutStarted, v1alpha1.EventRestored:
			// A restore starts a rollout too; its completion and failure are counted below.
			started.Inc()
		case v1alpha1.EventRolloutComplete:
			completed.Inc()
		case v1alpha1.EventRolloutFailed:
			failed.Inc()
		}
	}

	exportedMu.Lock()
	defer exportedMu.Unlock()
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	previous, seen := exportedFor[key]
	if !seen || previous.pending != summary.PendingProbes {
		pendingProbesChanged.With(labels).Set(float64(now.Unix()))
	}
	exportedFor[key] = exported{pending: summary.PendingProbes, conditions: recordConditions(key, outcome, previous.conditions)}
}

// recordConditions sets the series of each of the operator's conditions in the outcome and then
// deletes the ones previously set that no longer hold, so that no scrape sees a condition type
// without a series. It returns the series now set.
func recordConditions(policy types.NamespacedName, outcome plan.Outcome, previous []conditionSeries) []conditionSeries {
	var current []conditionSeries
	for _, c := range plan.OwnConditions(outcome.Status.Conditions) {
		series := conditionSeries{conditionType: c.Type, status: string(c.Status), reason: c.Reason}
		policyCondition.With(series.labels(policy)).Set(1)
		current = append(current, series)
	}
	for _, old := range previous {
		if !slices.Contains(current, old) {
			policyCondition.Delete(old.labels(policy))
		}
	}
	return current
}

// forgetMetrics drops a deleted policy's series.
func forgetMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "policy": name}
	for _, v := range policyVecs {
		v.Delete(labels)
	}
	policyCondition.DeletePartialMatch(labels)
	exportedMu.Lock()
	defer exportedMu.Unlock()
	delete(exportedFor, types.NamespacedName{Namespace: namespace, Name: name})
}
