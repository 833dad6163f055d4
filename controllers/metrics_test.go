package controllers_test

import (
	"testing"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// TestMetricsFollowThePolicy reads the operator's metrics from the registry the metrics server
// serves, while a policy annotates and rolls a workload.
func TestMetricsFollowThePolicy(t *testing.T) {
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	d := createDeployment(t, ns, "nginx", nginx())
	p := createPolicy(t, ns, "metrics", map[string]string{"app": "nginx"})
	eventuallyAnnotated(t, d)
	eventuallyPolicy(t, p, func(g Gomega, _ *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(metricValue(g, "proberedirect_policy_pending_probes", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_rollouts_started_total", ns)).To(Equal(1.0))
	})
	completeDeploymentRollout(t, d)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected)(g, p)
		g.Expect(metricValue(g, "proberedirect_policy_selected_workloads", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_policy_rewritten_probes", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_policy_pending_probes", ns)).To(Equal(0.0))
		g.Expect(metricValue(g, "proberedirect_policy_unhealthy_pods", ns)).To(Equal(0.0))
		g.Expect(metricValue(g, "proberedirect_rollouts_completed_total", ns)).To(Equal(1.0))
		g.Expect(metricValue(g, "proberedirect_rollouts_failed_total", ns)).To(Equal(0.0))
	})
}

// metricValue returns the value of the series of the policy "metrics"; a missing series counts as 0.
func metricValue(g Gomega, name, namespace string) float64 {
	const policy = "metrics"
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "namespace") == namespace && label(m, "policy") == policy {
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
