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
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// Metrics beyond controller-runtime's own, labelled by the policy's namespace and name. The
// gauges mirror status.summary; the counters count the rollout Events the operator records.
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
	unhealthyPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proberedirect_policy_unhealthy_pods",
		Help: "Pods of selected workloads with kubelet Unhealthy events within the window.",
	}, policyLabels)
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
)

func init() {
	metrics.Registry.MustRegister(selectedWorkloads, rewrittenProbes, pendingProbes, unhealthyPods,
		rolloutsStarted, rolloutsCompleted, rolloutsFailed)
}

// recordMetrics updates the policy's metrics from the outcome of one reconcile.
func recordMetrics(p *v1alpha1.ProbeRedirectPolicy, outcome plan.Outcome) {
	labels := prometheus.Labels{"namespace": p.Namespace, "policy": p.Name}
	summary := outcome.Status.Summary
	selectedWorkloads.With(labels).Set(float64(summary.SelectedWorkloads))
	rewrittenProbes.With(labels).Set(float64(summary.RewrittenProbes))
	pendingProbes.With(labels).Set(float64(summary.PendingProbes))
	unhealthyPods.With(labels).Set(float64(summary.UnhealthyPods))
	for _, e := range outcome.Events {
		switch e.Reason {
		case v1alpha1.EventRolloutStarted, v1alpha1.EventRestored:
			// A restore starts a rollout too; its completion and failure are counted below.
			rolloutsStarted.With(labels).Inc()
		case v1alpha1.EventRolloutComplete:
			rolloutsCompleted.With(labels).Inc()
		case v1alpha1.EventRolloutFailed:
			rolloutsFailed.With(labels).Inc()
		}
	}
}

// forgetMetrics drops a deleted policy's series.
func forgetMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "policy": name}
	for _, v := range []*prometheus.MetricVec{selectedWorkloads.MetricVec, rewrittenProbes.MetricVec,
		pendingProbes.MetricVec, unhealthyPods.MetricVec, rolloutsStarted.MetricVec, rolloutsCompleted.MetricVec, rolloutsFailed.MetricVec} {
		v.Delete(labels)
	}
}
