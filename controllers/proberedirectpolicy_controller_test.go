package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	securityapi "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/controllers"
)

const strict = securityapi.PeerAuthentication_MutualTLS_STRICT

// nginx is the Alibaba ASM documentation's example: an HTTP readiness probe on port 80 with a
// custom header.
func nginx() []corev1.Container {
	probe := httpGet(intstr.FromInt(80), "/index.html")
	probe.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "Custom-Header", Value: "Awesome"}}
	return []corev1.Container{container("nginx", port("http", 80), readiness(probe))}
}

func TestStrictMTLSRedirectsHTTPProbeAndVerifiesLivePods(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	d := createDeployment(t, ns, "nginx", nginx())
	oldPod := completeDeploymentRollout(t, d)
	unhealthyEvent(t, oldPod, "Readiness probe failed: Get \"http://10.0.0.7:80/index.html\": read tcp 10.0.0.1:51234->10.0.0.7:80: read: connection reset by peer", 4)

	p := createPolicy(t, ns, "nginx", map[string]string{"app": "nginx"})
	eventuallyAnnotated(t, d)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonRolloutInProgress)(g, p)
		haveCondition(v1alpha1.ConditionProbesHealthy, metav1.ConditionFalse, v1alpha1.ReasonUnhealthyPods)(g, p)
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		g.Expect(p.Status.UnhealthyPods).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"Pod": Equal(oldPod.Name), "Workload": Equal("nginx"), "ProbeKind": Equal(v1alpha1.ProbeReadiness), "Count": Equal(int32(4)),
		})))
		w := workload(p, v1alpha1.KindDeployment, "nginx")
		g.Expect(w.State).To(Equal(v1alpha1.WorkloadRolling))
		g.Expect(w.Probes).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"Container": Equal("nginx"), "Kind": Equal(v1alpha1.ProbeReadiness), "Handler": Equal(v1alpha1.HandlerHTTP),
			"MTLSMode": Equal(v1alpha1.MTLSStrict), "State": Equal(v1alpha1.ProbePendingRollout),
			"Original": Equal("HTTP :80/index.html"), "Rewritten": Equal("HTTP :15020/app-health/nginx/readyz"),
		})))
	})

	// The Deployment controller replaces the pod; the new one comes from the annotated template.
	newPod := completeDeploymentRollout(t, d)
	got := eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected)(g, p)
		haveCondition(v1alpha1.ConditionReconciling, metav1.ConditionFalse, v1alpha1.ReasonSucceeded)(g, p)
		haveCondition(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonSucceeded)(g, p)
		haveCondition(v1alpha1.ConditionProbesHealthy, metav1.ConditionTrue, v1alpha1.ReasonNoUnhealthyEvents)(g, p)
		g.Expect(p.Status.Summary).To(Equal(v1alpha1.PolicySummary{
			SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, RewrittenProbes: 1,
		}))
		g.Expect(workload(p, v1alpha1.KindDeployment, "nginx").Probes).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"State": Equal(v1alpha1.ProbeRewritten), "Reason": Equal(v1alpha1.StatusReasonVerifiedOnPods),
		})))
		g.Expect(p.Status.Rollouts).To(BeEmpty())
		g.Expect(policyEvents(g, p)).To(ContainElements(v1alpha1.EventAnnotated, v1alpha1.EventRolloutStarted, v1alpha1.EventRolloutComplete))
	})

	// The live pod really probes the agent, and the header survived the rewrite.
	live := &corev1.Pod{}
	NewWithT(t).Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(newPod), live)).To(Succeed())
	NewWithT(t).Expect(live.Spec.Containers[0].ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromInt(15020)))
	NewWithT(t).Expect(live.Spec.Containers[0].ReadinessProbe.HTTPGet.HTTPHeaders).To(ConsistOf(corev1.HTTPHeader{Name: "Custom-Header", Value: "Awesome"}))

	assertIdle(t, got, d)
}

// assertIdle checks that with nothing changing the operator writes nothing: neither the policy
// nor the workload changes its resourceVersion.
func assertIdle(t *testing.T, p *v1alpha1.ProbeRedirectPolicy, workloads ...client.Object) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	versions := map[client.Object]string{}
	for _, obj := range append([]client.Object{p.DeepCopy()}, workloads...) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		versions[obj] = obj.GetResourceVersion()
	}
	g.Consistently(func(g Gomega) {
		for obj, version := range versions {
			fresh := obj.DeepCopyObject().(client.Object)
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), fresh)).To(Succeed())
			g.Expect(fresh.GetResourceVersion()).To(Equal(version), "%T %s was written while idle", obj, obj.GetName())
		}
	}, 2*coalesce+time.Second, 250*time.Millisecond).Should(Succeed())
}

func TestPermissiveRedirectsTCPProbesOnly(t *testing.T) {
	ns := meshNamespace(t)
	tcp := createDeployment(t, ns, "tcp", []corev1.Container{container("app", port("tcp", 2940), readiness(tcpSocket(2940)))})
	web := createDeployment(t, ns, "web", []corev1.Container{container("app", port("http", 8080), readiness(httpGet(intstr.FromInt(8080), "/healthz")))})
	script := createDeployment(t, ns, "script", []corev1.Container{container("app", liveness(execProbe("cat", "/tmp/healthy")))})
	p := createPolicy(t, ns, "all", map[string]string{}, maxConcurrent(5))

	eventuallyAnnotated(t, tcp)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		g.Expect(p.Status.Summary.SelectedWorkloads).To(Equal(int32(3)))
		haveWorkloadState(v1alpha1.KindDeployment, "tcp", v1alpha1.WorkloadRolling)(g, p)
		g.Expect(workload(p, v1alpha1.KindDeployment, "tcp").Probes[0].State).To(Equal(v1alpha1.ProbePendingRollout))
		web := workload(p, v1alpha1.KindDeployment, "web")
		g.Expect(web.State).To(Equal(v1alpha1.WorkloadNotNeeded))
		g.Expect(web.Probes).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"State": Equal(v1alpha1.ProbeNotNeeded), "Reason": Equal(v1alpha1.StatusReasonPortNotStrict), "MTLSMode": Equal(v1alpha1.MTLSPermissive),
		})))
		script := workload(p, v1alpha1.KindDeployment, "script")
		g.Expect(script.State).To(Equal(v1alpha1.WorkloadNotNeeded))
		g.Expect(script.Probes).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"Handler": Equal(v1alpha1.HandlerExec), "State": Equal(v1alpha1.ProbeNotNeeded), "Reason": Equal(v1alpha1.StatusReasonExecProbe),
		})))
	})
	consistentlyNotAnnotated(t, web)
	consistentlyNotAnnotated(t, script)
}

func TestPortAndWorkloadLevelPeerAuthentication(t *testing.T) {
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	createPeerAuthentication(t, ns, "relaxed", securityapi.PeerAuthentication_MutualTLS_PERMISSIVE, selecting(map[string]string{"app": "relaxed"}))
	createPeerAuthentication(t, ns, "mixed", securityapi.PeerAuthentication_MutualTLS_PERMISSIVE,
		selecting(map[string]string{"app": "mixed"}), portMode(8080, strict))
	httpOn := func(p int32) []corev1.Container {
		return []corev1.Container{container("app", port("http", p), readiness(httpGet(intstr.FromInt(int(p)), "/ready")))}
	}
	relaxed := createDeployment(t, ns, "relaxed", httpOn(8080))
	mixed := createDeployment(t, ns, "mixed", httpOn(8080))
	p := createPolicy(t, ns, "all", map[string]string{}, maxConcurrent(5))

	eventuallyAnnotated(t, mixed)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		r := workload(p, v1alpha1.KindDeployment, "relaxed")
		g.Expect(r.State).To(Equal(v1alpha1.WorkloadNotNeeded))
		g.Expect(r.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		m := workload(p, v1alpha1.KindDeployment, "mixed")
		g.Expect(m.State).To(Equal(v1alpha1.WorkloadRolling))
		g.Expect(m.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		g.Expect(m.Probes[0].MTLSMode).To(Equal(v1alpha1.MTLSStrict), "portLevelMtls makes port 8080 STRICT")
	})
	consistentlyNotAnnotated(t, relaxed)
}

func TestUserRewriteValueIsNeverOverwritten(t *testing.T) {
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	optedOut := createDeployment(t, ns, "opted-out", nginx(), rewriteAnnotationValue("false"))
	garbled := createDeployment(t, ns, "garbled", nginx(), rewriteAnnotationValue("yes"))
	p := createPolicy(t, ns, "all", map[string]string{}, maxConcurrent(5))

	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		o := workload(p, v1alpha1.KindDeployment, "opted-out")
		g.Expect(o.State).To(Equal(v1alpha1.WorkloadOptedOut))
		g.Expect(o.Probes[0].State).To(Equal(v1alpha1.ProbeOptedOut))
		gb := workload(p, v1alpha1.KindDeployment, "garbled")
		g.Expect(gb.State).To(Equal(v1alpha1.WorkloadUnsupported))
		g.Expect(gb.Reason).To(Equal(v1alpha1.StatusReasonInvalidRewriteAnnotation))
		haveCondition(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonUnsupportedProbes)(g, p)
	})
	for obj, want := range map[client.Object]string{optedOut: "false", garbled: "yes"} {
		NewWithT(t).Consistently(func(g Gomega) {
			value, _, owned := rewriteAnnotation(t, obj)
			g.Expect(value).To(Equal(want))
			g.Expect(owned).To(BeFalse())
		}, 3*time.Second, 250*time.Millisecond).Should(Succeed())
	}
}

func TestHazardsBlockTheAnnotation(t *testing.T) {
	ns := meshNamespace(t)
	createPeerAuthentication(t, ns, "default", strict)
	withHost := httpGet(intstr.FromInt(80), "/")
	withHost.HTTPGet.Host = "example.internal"
	hostSet := createDeployment(t, ns, "host-set", []corev1.Container{container("app", port("http", 80), readiness(withHost))})
	namedPort := createDeployment(t, ns, "named-port", []corev1.Container{
		container("app", readiness(httpGet(intstr.FromString("http"), "/"))),
		container("helper", port("http", 80)),
	})
	p := createPolicy(t, ns, "all", map[string]string{}, maxConcurrent(5))
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		h := workload(p, v1alpha1.KindDeployment, "host-set")
		g.Expect(h.State).To(Equal(v1alpha1.WorkloadUnsupported))
		g.Expect(h.Probes[0].Reason).To(Equal(v1alpha1.StatusReasonHostSet))
		n := workload(p, v1alpha1.KindDeployment, "named-port")
		g.Expect(n.State).To(Equal(v1alpha1.WorkloadUnsupported))
		g.Expect(n.Probes[0].Reason).To(Equal(v1alpha1.StatusReasonNamedPortNotDeclared))
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnsupportedProbes)(g, p)
		g.Expect(policyEvents(g, p)).To(ContainElement(v1alpha1.EventUnsupportedProbes))
	})
	consistentlyNotAnnotated(t, hostSet)
	consistentlyNotAnnotated(t, namedPort)
}

func TestOutOfMeshWorkloadsAreReportedNotTouched(t *testing.T) {
	ns := namespace(t, nil)
	d := createDeployment(t, ns, "plain", []corev1.Container{container("app", readiness(tcpSocket(80)))})
	p := createPolicy(t, ns, "all", map[string]string{})
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		w := workload(p, v1alpha1.KindDeployment, "plain")
		g.Expect(w.State).To(Equal(v1alpha1.WorkloadNotInMesh))
		g.Expect(w.Reason).To(Equal(v1alpha1.StatusReasonNoInjectionLabel))
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonNothingToRedirect)(g, p)
	})
	consistentlyNotAnnotated(t, d)
}

func TestSuspendReportsWithoutChanging(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t)
	d := createDeployment(t, ns, "tcp", []corev1.Container{container("app", readiness(tcpSocket(2940)))})
	p := createPolicy(t, ns, "suspended", map[string]string{"app": "tcp"}, func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Suspend = ptrTo(true) })
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSuspended)(g, p)
		haveWorkloadState(v1alpha1.KindDeployment, "tcp", v1alpha1.WorkloadSuspended)(g, p)
		g.Expect(p.Status.Summary.PendingProbes).To(Equal(int32(1)))
	})
	consistentlyNotAnnotated(t, d)

	NewWithT(t).Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
	p.Spec.Suspend = ptrTo(false)
	NewWithT(t).Expect(k8sClient.Update(ctx, p)).To(Succeed())
	eventuallyAnnotated(t, d)
}

func TestOldestOfTwoConflictingPoliciesWins(t *testing.T) {
	ns := meshNamespace(t)
	d := createDeployment(t, ns, "tcp", []corev1.Container{container("app", readiness(tcpSocket(2940)))})
	older := createPolicy(t, ns, "older", map[string]string{"app": "tcp"})
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	newer := createPolicy(t, ns, "newer", map[string]string{})

	eventuallyAnnotated(t, d)
	eventuallyPolicy(t, older, haveWorkloadState(v1alpha1.KindDeployment, "tcp", v1alpha1.WorkloadRolling))
	eventuallyPolicy(t, newer, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		w := workload(p, v1alpha1.KindDeployment, "tcp")
		g.Expect(w.State).To(Equal(v1alpha1.WorkloadConflict))
		g.Expect(w.Message).To(ContainSubstring(`"older"`))
		haveCondition(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonConflict)(g, p)
		g.Expect(policyEvents(g, p)).To(ContainElement(v1alpha1.EventConflict))
	})

	// When the older policy goes, the newer one takes over.
	NewWithT(t).Expect(k8sClient.Delete(context.Background(), older)).To(Succeed())
	eventuallyPolicy(t, newer, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveWorkloadState(v1alpha1.KindDeployment, "tcp", v1alpha1.WorkloadRolling)(g, p)
		haveCondition(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonSucceeded)(g, p)
	})
}

func TestPeerAuthenticationChangeReReconciles(t *testing.T) {
	ns := meshNamespace(t)
	d := createDeployment(t, ns, "web", []corev1.Container{container("app", port("http", 8080), readiness(httpGet(intstr.FromInt(8080), "/healthz")))})
	p := createPolicy(t, ns, "web", map[string]string{"app": "web"})
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		haveWorkloadState(v1alpha1.KindDeployment, "web", v1alpha1.WorkloadNotNeeded)(g, p)
	})
	consistentlyNotAnnotated(t, d)

	// A mesh-wide STRICT policy in the root namespace flips the namespace.
	pa := createPeerAuthentication(t, rootNamespace, "mesh-"+ns, strict)
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), pa) })
	eventuallyAnnotated(t, d)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		haveWorkloadState(v1alpha1.KindDeployment, "web", v1alpha1.WorkloadRolling)(g, p)
	})
}

// TestInvalidSelectorIsReportedInStatusAndEvent: admission rejects an invalid selector today, but a
// policy stored before the CRD had those rules keeps it; the operator reports it.
func TestInvalidSelectorIsReportedInStatusAndEvent(t *testing.T) {
	ns := meshNamespace(t)
	rejected := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rejected"},
		Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "not a valid label value!"}}},
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), rejected)).To(MatchError(ContainSubstring("selector.matchLabels values must be label values")))
	p := createPolicyStoredBeforeSelectorRules(t, ns, "bad", map[string]string{"app": "not a valid label value!"})
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector)(g, p)
		haveCondition(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidSelector)(g, p)
		g.Expect(condition(p, v1alpha1.ConditionReady).Message).To(ContainSubstring("not a valid label value!"))
		g.Expect(policyEvents(g, p)).To(ContainElement(v1alpha1.EventInvalidSelector))
	})
}

func TestRolloutGateDeadlineAndPauseOnFailure(t *testing.T) {
	ns := meshNamespace(t)
	tcp := []corev1.Container{container("app", readiness(tcpSocket(2940)))}
	a := createDeployment(t, ns, "a", tcp)
	b := createDeployment(t, ns, "b", tcp)
	c := createDeployment(t, ns, "c", tcp)
	p := createPolicy(t, ns, "gate", map[string]string{}, func(p *v1alpha1.ProbeRedirectPolicy) {
		p.Spec.Rollout.ProgressDeadlineSeconds = 10
	})

	eventuallyAnnotated(t, a)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveWorkloadState(v1alpha1.KindDeployment, "b", v1alpha1.WorkloadQueued)(g, p)
		g.Expect(workload(p, v1alpha1.KindDeployment, "b").Reason).To(Equal(v1alpha1.StatusReasonWaitingForRolloutSlot))
		g.Expect(p.Status.Rollouts).To(ConsistOf(MatchFields(IgnoreExtras, Fields{"Name": Equal("a")})))
	})
	consistentlyNotAnnotated(t, b)

	completeDeploymentRollout(t, a)
	eventuallyAnnotated(t, b)
	startDeploymentRollout(t, b) // b never finishes
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveWorkloadState(v1alpha1.KindDeployment, "a", v1alpha1.WorkloadRedirected)(g, p)
		haveWorkloadState(v1alpha1.KindDeployment, "b", v1alpha1.WorkloadRolling)(g, p)
	})
	consistentlyNotAnnotated(t, c)

	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveWorkloadState(v1alpha1.KindDeployment, "b", v1alpha1.WorkloadRolloutFailed)(g, p)
		haveCondition(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonRolloutFailed)(g, p)
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonRolloutFailed)(g, p)
		g.Expect(workload(p, v1alpha1.KindDeployment, "c").Reason).To(Equal(v1alpha1.StatusReasonPausedAfterFailure))
		g.Expect(policyEvents(g, p)).To(ContainElement(v1alpha1.EventRolloutFailed))
	})
	consistentlyNotAnnotated(t, c)

	// Fixing b (its rollout completes) lifts the pause.
	completeDeploymentRollout(t, b)
	eventuallyAnnotated(t, c)
}

func TestStatefulSetAndDaemonSetRolloutsAreFollowed(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	ns := meshNamespace(t)
	tcp := []corev1.Container{container("app", readiness(tcpSocket(5432)))}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptrTo(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podTemplate("db", tcp)},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}, Template: podTemplate("agent", tcp)},
	}
	g.Expect(k8sClient.Create(ctx, sts)).To(Succeed())
	g.Expect(k8sClient.Create(ctx, ds)).To(Succeed())
	p := createPolicy(t, ns, "all", map[string]string{}, maxConcurrent(2))
	eventuallyAnnotated(t, sts)
	eventuallyAnnotated(t, ds)

	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sts), sts)).To(Succeed())
	replacePods(t, ns, "db", sts.Spec.Template, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: sts.UID, Controller: ptrTo(true)}, nil)
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1,
		CurrentRevision: "db-2", UpdateRevision: "db-2"}
	g.Expect(k8sClient.Status().Update(ctx, sts)).To(Succeed())

	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ds), ds)).To(Succeed())
	replacePods(t, ns, "agent", ds.Spec.Template, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: ds.UID, Controller: ptrTo(true)}, nil)
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
		UpdatedNumberScheduled: 1, NumberAvailable: 1, NumberReady: 1}
	g.Expect(k8sClient.Status().Update(ctx, ds)).To(Succeed())

	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected)(g, p)
		haveWorkloadState(v1alpha1.KindStatefulSet, "db", v1alpha1.WorkloadRedirected)(g, p)
		haveWorkloadState(v1alpha1.KindDaemonSet, "agent", v1alpha1.WorkloadRedirected)(g, p)
		g.Expect(p.Status.Summary.RewrittenProbes).To(Equal(int32(2)))
	})
}

func TestDeletionWithKeepLeavesAnnotations(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t)
	d := createDeployment(t, ns, "tcp", []corev1.Container{container("app", readiness(tcpSocket(2940)))})
	p := createPolicy(t, ns, "keep", map[string]string{"app": "tcp"})
	eventuallyAnnotated(t, d)
	NewWithT(t).Expect(p.Finalizers).To(BeEmpty())
	NewWithT(t).Expect(k8sClient.Delete(ctx, p)).To(Succeed())
	NewWithT(t).Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.ProbeRedirectPolicy{})
	}, timeout, interval).Should(MatchError(ContainSubstring("not found")))
	value, _, owned := rewriteAnnotation(t, d)
	NewWithT(t).Expect(value).To(Equal("true"))
	NewWithT(t).Expect(owned).To(BeTrue())
}

func TestDeletionWithRestoreRemovesOnlyTheOperatorsAnnotations(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	ns := meshNamespace(t)
	ours := createDeployment(t, ns, "ours", []corev1.Container{container("app", readiness(tcpSocket(2940)))})
	theirs := createDeployment(t, ns, "theirs", []corev1.Container{container("app", readiness(tcpSocket(2940)))},
		rewriteAnnotationValue("true"))
	p := createPolicy(t, ns, "restore", map[string]string{}, maxConcurrent(5),
		func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.OnDelete = v1alpha1.DeletionPolicyRestore })
	eventuallyAnnotated(t, ours)
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Finalizers).To(ContainElement(controllers.Finalizer))
	})
	completeDeploymentRollout(t, ours)
	completeDeploymentRollout(t, theirs)
	eventuallyPolicy(t, p, haveCondition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRedirected))

	g.Expect(k8sClient.Delete(ctx, p)).To(Succeed())
	g.Eventually(func(g Gomega) {
		_, present, owned := rewriteAnnotation(t, ours)
		g.Expect(present).To(BeFalse(), "the operator's annotation is removed")
		g.Expect(owned).To(BeFalse())
	}, timeout, interval).Should(Succeed())
	eventuallyPolicy(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		haveCondition(v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonDeleting)(g, p)
		g.Expect(policyEvents(g, p)).To(ContainElement(v1alpha1.EventRestored))
	})

	// The policy waits for the restoring rollout, then lets go.
	completeDeploymentRollout(t, ours)
	g.Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.ProbeRedirectPolicy{})
	}, timeout, interval).Should(MatchError(ContainSubstring("not found")))
	value, _, _ := rewriteAnnotation(t, theirs)
	g.Expect(value).To(Equal("true"), "the user's own annotation stays")
}

// TestAnnotatesTemplatesWhoseEmptyAnnotationMapBelongsToAnotherManager reproduces Argo CD syncing
// with ServerSideApply=true a manifest that renders `annotations: {}`: argocd-controller owns the
// empty map, which makes a plain server-side apply of a new key conflict.
func TestAnnotatesTemplatesWhoseEmptyAnnotationMapBelongsToAnotherManager(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := meshNamespace(t)
	manifest := func(annotations map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "gitops", "namespace": ns},
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": map[string]any{"app": "gitops"}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app": "gitops"}, "annotations": annotations},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example/app:1",
						"readinessProbe": map[string]any{"tcpSocket": map[string]any{"port": int64(8080)}}}}},
				},
			},
		}}
	}
	g.Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(manifest(map[string]any{})),
		client.FieldOwner("argocd-controller"))).To(Succeed())
	// The trap is real: another manager adding a key without force conflicts.
	err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(manifest(map[string]any{"example.com/key": "v"})),
		client.FieldOwner("someone-else"))
	g.Expect(err).To(MatchError(ContainSubstring(".spec.template.metadata.annotations")))

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gitops"}}
	createPolicy(t, ns, "gitops", map[string]string{"app": "gitops"})
	eventuallyAnnotated(t, d)
}
