package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/controllers"
)

// TestUnhealthyEventStormIsCoalesced floods a pod with Unhealthy events and counts the policy's
// status writes: they must stay near one per coalescing interval, not one per event.
func TestUnhealthyEventStormIsCoalesced(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := meshNamespace(t)
	d := createDeployment(t, ns, "web", []corev1.Container{container("app", readiness(tcpSocket(8080)))},
		rewriteAnnotationValue("true"))
	pod := completeDeploymentRollout(t, d)
	p := createPolicy(t, ns, "web", map[string]string{"app": "web"})
	eventuallyPolicy(t, p, haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected))

	watcher, err := k8sClient.Watch(ctx, &v1alpha1.ProbeRedirectPolicyList{}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred())
	defer watcher.Stop()
	writes := make(chan time.Time, 1000)
	go func() {
		for e := range watcher.ResultChan() {
			if e.Type == watch.Modified {
				writes <- time.Now()
			}
		}
	}()

	// The kubelet's event recorder aggregates a repeating failure into one Event and raises its
	// count, so a storm is a stream of updates to the same Event.
	const failures = 60
	start := time.Now()
	storm := unhealthyEvent(t, pod, "Readiness probe failed: HTTP probe failed with statuscode: 500", 1)
	for i := 2; i <= failures; i++ {
		time.Sleep(50 * time.Millisecond)
		storm.Count = int32(i)
		storm.LastTimestamp = metav1.Now()
		g.Expect(k8sClient.Update(ctx, storm)).To(Succeed())
	}
	other := unhealthyEvent(t, pod, "Liveness probe failed: dial tcp 10.0.0.7:8080: connect: connection refused", 3)
	elapsed := time.Since(start)

	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionProbesHealthy, metav1.ConditionFalse, v1alpha1.ReasonUnhealthyPods)(g, p)
		g.Expect(p.Status.Summary.UnhealthyPods).To(Equal(int32(1)))
		g.Expect(p.Status.UnhealthyPods[0].Count).To(Equal(int32(failures) + other.Count))
	})
	time.Sleep(coalesce + time.Second)
	close(writes)
	count := len(writes)
	limit := int(elapsed/coalesce) + 2
	var seen []time.Time
	for w := range writes {
		seen = append(seen, w)
	}
	closest := time.Duration(0)
	for i := 1; i < len(seen); i++ {
		if gap := seen[i].Sub(seen[i-1]); closest == 0 || gap < closest {
			closest = gap
		}
	}
	t.Logf("%d Unhealthy event updates over %s caused %d status writes (limit %d), the closest %s apart", failures+1,
		elapsed.Round(time.Millisecond), count, limit, closest.Round(time.Millisecond))
	g.Expect(count).To(BeNumerically(">=", 1))
	g.Expect(count).To(BeNumerically("<=", limit))
	// Two writes of one policy are at least the coalescing interval apart (as seen through a
	// watch, which may bring one a little late and the next on time).
	if len(seen) > 1 {
		g.Expect(closest).To(BeNumerically(">=", coalesce-300*time.Millisecond))
	}
}

// TestPrinterColumnsCarryRealValues asks the API server for the table `kubectl get
// proberedirectpolicies` prints, and checks its columns and values.
func TestPrinterColumnsCarryRealValues(t *testing.T) {
	g := NewWithT(t)
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	d := createDeployment(t, ns, "nginx", nginx())
	p := createPolicy(t, ns, "nginx", map[string]string{"app": "nginx"})
	eventuallyAnnotated(t, d)
	completeDeploymentRollout(t, d)
	eventuallyPolicy(t, p, haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected))

	clientset, err := kubernetes.NewForConfig(restConfig)
	g.Expect(err).NotTo(HaveOccurred())
	table := &metav1.Table{}
	g.Expect(clientset.RESTClient().Get().AbsPath("/apis/mesh.proberedirect.io/v1alpha1/namespaces", ns, "proberedirectpolicies").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(context.Background()).Into(table)).To(Succeed())

	var names []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	g.Expect(names).To(Equal([]string{"Name", "Mesh", "MTLS", "Workloads", "Rewritten", "Unhealthy", "Ready", "Age"}))
	g.Expect(table.Rows).To(HaveLen(1))
	cells := table.Rows[0].Cells
	g.Expect(cells[0]).To(Equal("nginx"))
	g.Expect(cells[1]).To(Equal("Istio"))
	g.Expect(cells[2]).To(Equal("STRICT"))
	g.Expect(cells[3]).To(BeEquivalentTo(1))
	g.Expect(cells[4]).To(BeEquivalentTo(1))
	g.Expect(cells[5]).To(BeEquivalentTo(0))
	g.Expect(cells[6]).To(Equal("True"))
}

// TestConditionsOfOtherControllersAreKept has another controller add a condition to the policy's
// status, then makes the operator rewrite its own: the other condition stays, and the operator's
// field manager never owns it.
func TestConditionsOfOtherControllersAreKept(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := meshNamespace(t)
	createDeployment(t, ns, "web", []corev1.Container{container("app", readiness(httpGet(intstr.FromInt32(8080), "/ready")))})
	p := createPolicy(t, ns, "web", map[string]string{"app": "web"})
	p = eventuallyPolicy(t, p, haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonNothingToRedirect))

	// Another controller adds its condition with a plain status update, under its own manager.
	foreign := metav1.Condition{Type: "PolicyAudited", Status: metav1.ConditionTrue, Reason: "AuditPassed",
		Message: "checked by the audit controller", ObservedGeneration: p.Generation, LastTransitionTime: metav1.Now()}
	p.Status.Conditions = append(p.Status.Conditions, foreign)
	g.Expect(k8sClient.Status().Update(ctx, p, client.FieldOwner("audit-controller"))).To(Succeed())

	// A spec change makes the operator write its conditions again.
	p.Spec.Suspend = ptrTo(true)
	g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
	p = eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(condition(p, v1alpha1.ConditionReady).ObservedGeneration).To(Equal(p.Generation))
	})

	got := meta.FindStatusCondition(p.Status.Conditions, "PolicyAudited")
	g.Expect(got).NotTo(BeNil(), "the other controller's condition is kept")
	g.Expect(got.Reason).To(Equal("AuditPassed"))
	for _, entry := range p.ManagedFields {
		if entry.Manager != controllers.FieldOwner || entry.Subresource != "status" {
			continue
		}
		g.Expect(entry.FieldsV1.GetRawString()).NotTo(ContainSubstring(`"k:{\"type\":\"PolicyAudited\"}"`),
			"the operator's field manager does not own the other controller's condition")
		g.Expect(entry.FieldsV1.GetRawString()).To(ContainSubstring(`"k:{\"type\":\"Ready\"}"`))
	}
}

// TestWorkloadEventsNameTheirWorkload annotates three Deployments at once and checks that each
// gets Events of its own, naming it as the related object with its own note, rather than one
// series that keeps the first workload's note (client-go's events.k8s.io recorder folds Events of
// one reason on one object into a series unless their related objects differ).
func TestWorkloadEventsNameTheirWorkload(t *testing.T) {
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	names := []string{"alpha", "beta", "gamma"}
	for _, name := range names {
		createDeployment(t, ns, name, nginx())
	}
	p := createPolicy(t, ns, "all", map[string]string{}, maxConcurrent(3))
	NewWithT(t).Eventually(func(g Gomega) {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		related, notes := map[string]string{}, map[string]bool{}
		for _, e := range list.Items {
			if e.Regarding.Name != p.Name || e.Reason != string(v1alpha1.EventRolloutStarted) {
				continue
			}
			g.Expect(e.Series).To(BeNil(), "no series: %s", e.Note)
			g.Expect(e.Related).NotTo(BeNil(), e.Note)
			g.Expect(e.Related.Kind).To(Equal("Deployment"))
			g.Expect(e.Related.APIVersion).To(Equal("apps/v1"))
			g.Expect(e.Related.Namespace).To(Equal(ns))
			related[e.Related.Name] = e.Note
			notes[e.Note] = true
		}
		g.Expect(related).To(HaveLen(len(names)))
		for _, name := range names {
			g.Expect(related).To(HaveKeyWithValue(name, HavePrefix("Rollout of Deployment/"+name+" started")))
		}
		g.Expect(notes).To(HaveLen(len(names)))
	}, timeout, interval).Should(Succeed())
}
