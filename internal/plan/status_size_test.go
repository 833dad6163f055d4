package plan_test

import (
	"encoding/json"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// statusBudget is the size a policy's status must stay under, whatever it selects (issue 14): an
// object far below etcd's 1.5 MiB request limit and cheap to watch.
const statusBudget = 256 << 10

// TestStatusOfFiveThousandWorkloadsStaysSmall decides a policy that selects 5,000 Deployments with
// three probes each (half of them rolling, all of them with Unhealthy pods) and checks that the
// status, as JSON, stays under 256 KiB: the lists are bounded, the summary keeps the totals.
func TestStatusOfFiveThousandWorkloadsStaysSmall(t *testing.T) {
	g := NewWithT(t)
	p := policy(func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = v1alpha1.MaxConcurrentLimit })
	const n = 5000
	ws := make([]plan.Workload, 0, n)
	in := input(p)
	for i := range n {
		name := fmt.Sprintf("service-with-a-rather-long-name-%04d", i)
		c := container("app", httpPort(), readiness(httpGet(8080, "/ready/with/a/long/path")),
			liveness(httpGet(8080, "/live/with/a/long/path")),
			func(c *corev1.Container) { c.StartupProbe = &corev1.Probe{ProbeHandler: tcpSocket(8080)} })
		var w plan.Workload
		if i%2 == 0 {
			w = deployment(name, containers(c), annotated(), managed(), rolling())
		} else {
			w = deployment(name, containers(c))
		}
		ws = append(ws, w)
		pod := podOf(w, "abcde")
		in.Pods = append(in.Pods, pod)
		in.Events = append(in.Events, unhealthyEvent(pod.Name, "Readiness probe failed: Get \"http://10.0.0.1:8080/ready/with/a/long/path\": read: connection reset by peer", 12, now))
	}
	in.Workloads = ws

	d := plan.Decide(in)
	out := plan.Complete(d, applied(d, 2))
	raw, err := json.Marshal(out.Status)
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("status of a policy selecting %d workloads: %d bytes (%.1f KiB; %d workload entries, %d rollout records, %d unhealthy pods)",
		n, len(raw), float64(len(raw))/1024, len(out.Status.Workloads), len(out.Status.Rollouts), len(out.Status.UnhealthyPods))
	g.Expect(out.Status.Summary.SelectedWorkloads).To(Equal(int32(n)))
	g.Expect(len(raw)).To(BeNumerically("<", statusBudget))
}
