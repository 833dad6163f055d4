package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// TestMetricsFollowThePolicy reads the operator's metrics from the registry the metrics server
// serves, while a policy annotates and rolls a workload, and after it is deleted.
func TestMetricsFollowThePolicy(t *testing.T) {
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	d := createDeployment(t, ns, "nginx", nginx())
	before := time.Now().Truncate(time.Second)
	p := createPolicy(t, ns, "metrics", map[string]string{"app": "nginx"})
	eventuallyAnnotated(t, d)
	var pendingSince float64
	eventuallyPolicy(t, p, func(g Gomega, _ *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(metricValue(g, "proberedirect_policy_pending_probes", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_rollouts_started_total", ns)).To(Equal(1.0))
		g.Expect(conditionSeries(g, ns, "metrics")).To(Equal(map[string]string{
			"Ready":         "False/RolloutInProgress",
			"Reconciling":   "True/RolloutInProgress",
			"Stalled":       "False/Succeeded",
			"ProbesHealthy": "True/NoUnhealthyEvents",
		}))
		pendingSince = metricValue(g, "proberedirect_policy_pending_probes_last_change_timestamp_seconds", ns)
		g.Expect(pendingSince).To(BeNumerically(">=", float64(before.Unix())))
	})
	completeDeploymentRollout(t, d)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected)(g, p)
		g.Expect(metricValue(g, "proberedirect_policy_selected_workloads", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_policy_rewritten_probes", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_policy_pending_probes", ns)).To(Equal(0.0))
		g.Expect(metricValue(g, "proberedirect_policy_unhealthy_pods", ns)).To(Equal(0.0))
		g.Expect(metricValue(g, "proberedirect_policy_rollout_deadline_seconds", ns)).To(Equal(600.0))
		g.Expect(metricValue(g, "proberedirect_rollouts_completed_total", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_rollouts_failed_total", ns)).To(Equal(0.0))
		g.Expect(metricValue(g, "proberedirect_policy_pending_probes_last_change_timestamp_seconds", ns)).
			To(And(BeNumerically(">=", pendingSince), BeNumerically("<=", float64(time.Now().Unix()))))
		// The series of the previous status and reason are gone: one series per condition type.
		g.Expect(conditionSeries(g, ns, "metrics")).To(Equal(map[string]string{
			"Ready":         "True/Redirected",
			"Reconciling":   "False/Succeeded",
			"Stalled":       "False/Succeeded",
			"ProbesHealthy": "True/NoUnhealthyEvents",
		}))
	})

	NewWithT(t).Expect(k8sClient.Delete(context.Background(), p)).To(Succeed())
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(policySeries(g, ns, "metrics")).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
}

// TestConditionMetricFollowsTheStalledReason checks the condition series of a Stalled policy,
// and that they follow it when it is fixed; and the deadline gauge for a policy that sets one.
func TestConditionMetricFollowsTheStalledReason(t *testing.T) {
	ns := meshNamespace(t)
	p := createPolicyStoredBeforeSelectorRules(t, ns, "stalled", map[string]string{"app": "not a valid label value!"}, func(p *v1alpha1.ProbeRedirectPolicy) {
		p.Spec.Rollout.ProgressDeadlineSeconds = 120
	})
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(conditionSeries(g, ns, "stalled")).To(Equal(map[string]string{
			"Ready":         "False/InvalidSelector",
			"Reconciling":   "False/Succeeded",
			"Stalled":       "True/InvalidSelector",
			"ProbesHealthy": "True/NoUnhealthyEvents",
		}))
		g.Expect(metricValueOf(g, "proberedirect_policy_rollout_deadline_seconds", ns, "stalled")).To(Equal(120.0))
	}, timeout, interval).Should(Succeed())

	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(p), p)).To(Succeed())
		p.Spec.Selector = &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "none"}}
		g.Expect(k8sClient.Update(context.Background(), p)).To(Succeed())
	}, timeout, interval).Should(Succeed())
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(conditionSeries(g, ns, "stalled")).To(Equal(map[string]string{
			"Ready":         "True/NothingToRedirect",
			"Reconciling":   "False/Succeeded",
			"Stalled":       "False/Succeeded",
			"ProbesHealthy": "True/NoUnhealthyEvents",
		}))
	}, timeout, interval).Should(Succeed())
}

// metricValue returns the value of the series of the policy "metrics"; a missing series counts as 0.
func metricValue(g Gomega, name, namespace string) float64 {
	return metricValueOf(g, name, namespace, "metrics")
}

// metricValueOf returns the value of the policy's series of name; a missing series counts as 0.
func metricValueOf(g Gomega, name, namespace, policy string) float64 {
	series := policySeries(g, namespace, policy)[name]
	if len(series) == 0 {
		return 0
	}
	m := series[0]
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// conditionSeries returns "status/reason" by condition type, from the policy's
// proberedirect_policy_condition series; each must be 1, and a type may have only one.
func conditionSeries(g Gomega, namespace, policy string) map[string]string {
	out := map[string]string{}
	for _, m := range policySeries(g, namespace, policy)["proberedirect_policy_condition"] {
		kind := label(m, "type")
		g.Expect(out).NotTo(HaveKey(kind), "two series for condition %s", kind)
		g.Expect(m.GetGauge().GetValue()).To(Equal(1.0))
		out[kind] = label(m, "status") + "/" + label(m, "reason")
	}
	return out
}

// policySeries gathers the registry the metrics server serves and returns the policy's series,
// by metric name.
func policySeries(g Gomega, namespace, policy string) map[string][]*dto.Metric {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string][]*dto.Metric{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if label(m, "namespace") == namespace && label(m, "policy") == policy {
				out[f.GetName()] = append(out[f.GetName()], m)
			}
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
