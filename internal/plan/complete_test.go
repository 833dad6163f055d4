package plan_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

func TestCompleteFoldsApplyResults(t *testing.T) {
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	tests := []struct {
		name    string
		results map[plan.Ref]plan.ApplyResult
		check   func(g Gomega, out plan.Outcome)
	}{
		{
			name:    "annotated: a rollout record, Rolling and two events",
			results: map[plan.Ref]plan.ApplyResult{deploymentRef("a"): {Generation: 2}},
			check: func(g Gomega, out plan.Outcome) {
				g.Expect(out.Status.Rollouts).To(Equal([]v1alpha1.RolloutRecord{
					{Kind: v1alpha1.KindDeployment, Name: "a", Generation: 2, StartedAt: ptr.To(metav1.NewTime(now.Truncate(time.Second)))}}))
				ws := workloadStatus(g, out.Status, deploymentRef("a"))
				g.Expect(ws).To(And(HaveField("State", v1alpha1.WorkloadRolling), HaveField("Reason", v1alpha1.StatusReasonRolloutStarted),
					HaveField("Message", "annotated by the operator; rollout started")))
				g.Expect(ws.Probes).To(ConsistOf(And(HaveField("State", v1alpha1.ProbePendingRollout), HaveField("Reason", v1alpha1.StatusReasonRolloutStarted))))
				g.Expect(workloadStatus(g, out.Status, deploymentRef("b")).Reason).To(Equal(v1alpha1.StatusReasonWaitingForRolloutSlot))
				g.Expect(out.Status.Summary).To(Equal(v1alpha1.PolicySummary{SelectedWorkloads: 2, AnnotatedWorkloads: 1, PendingProbes: 2}))
				g.Expect(out.Events).To(Equal([]plan.Event{
					{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventAnnotated,
						Message: "Set sidecar.istio.io/rewriteAppHTTPProbers=true on the pod template of Deployment/a", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))},
					{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutStarted,
						Message: "Rollout of Deployment/a started (generation 2)", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))},
				}))
				g.Expect(out.RequeueAfter).To(Equal(10 * time.Minute))
				expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress, true, false)
				g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal("1 rolling, 1 queued, 0 of 2 workloads redirected"))
			},
		},
		{
			name:    "apply failed: stays queued with the error, a warning and ApplyFailed",
			results: map[plan.Ref]plan.ApplyResult{deploymentRef("a"): {Err: errors.New("conflict: field managed by kubectl")}},
			check: func(g Gomega, out plan.Outcome) {
				g.Expect(out.Status.Rollouts).To(BeEmpty())
				g.Expect(workloadStatus(g, out.Status, deploymentRef("a"))).To(And(
					HaveField("State", v1alpha1.WorkloadQueued), HaveField("Reason", v1alpha1.StatusReasonAnnotateFailed),
					HaveField("Message", "conflict: field managed by kubectl")))
				g.Expect(out.Status.Summary.AnnotatedWorkloads).To(BeZero())
				g.Expect(out.Events).To(Equal([]plan.Event{{Type: corev1.EventTypeWarning, Reason: v1alpha1.EventAnnotateFailed,
					Message: "Failed to annotate Deployment/a: conflict: field managed by kubectl", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))}}))
				g.Expect(out.RequeueAfter).To(BeZero())
				expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, true, false)
				g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal("Failed to annotate 1 workload(s); retrying"))
			},
		},
		{
			name:    "not attempted: stays queued, nothing recorded",
			results: nil,
			check: func(g Gomega, out plan.Outcome) {
				g.Expect(out.Status.Rollouts).To(BeEmpty())
				g.Expect(workloadStatus(g, out.Status, deploymentRef("a"))).To(And(
					HaveField("State", v1alpha1.WorkloadQueued), HaveField("Reason", v1alpha1.StatusReasonQueued)))
				g.Expect(out.Events).To(BeEmpty())
				expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress, true, false)
			},
		},
		{
			name:    "a result for a workload that was not admitted is ignored",
			results: map[plan.Ref]plan.ApplyResult{deploymentRef("b"): {Generation: 7}},
			check: func(g Gomega, out plan.Outcome) {
				g.Expect(out.Status.Rollouts).To(BeEmpty())
				g.Expect(workloadStatus(g, out.Status, deploymentRef("b")).State).To(Equal(v1alpha1.WorkloadQueued))
				g.Expect(out.Events).To(BeEmpty())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := plan.Decide(input(policy(), deployment("a", tcp), deployment("b", tcp)))
			g.Expect(d.Annotate).To(Equal([]plan.Ref{deploymentRef("a")}))
			tt.check(g, plan.Complete(d, tt.results))
		})
	}
}

func TestCompleteTruncatesLongMessages(t *testing.T) {
	g := NewWithT(t)
	d := plan.Decide(input(policy(), deployment("a", containers(container("web", readiness(tcpSocket(8080)))))))
	long := strings.Repeat("é", 700) // 1400 bytes

	out := plan.Complete(d, map[plan.Ref]plan.ApplyResult{deploymentRef("a"): {Err: errors.New(long)}})

	msg := workloadStatus(g, out.Status, deploymentRef("a")).Message
	g.Expect(len(msg)).To(BeNumerically("<=", 1024))
	g.Expect(utf8.ValidString(msg)).To(BeTrue())
	g.Expect(msg).To(HaveSuffix("é..."))
}

func TestRolloutCompletes(t *testing.T) {
	g := NewWithT(t)
	a := deployment("a", annotated(), managed(), generation(2))
	p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute)))
	in := input(p, a)
	istioOf(in).MTLS = resolver(strictNamespace())
	in.Pods = []*corev1.Pod{livePod(t, a, "x1")}

	d, out := decide(in)

	g.Expect(d.Annotate).To(BeEmpty())
	g.Expect(out.Status.Rollouts).To(BeNil())
	g.Expect(workloadStatus(g, out.Status, deploymentRef("a")).State).To(Equal(v1alpha1.WorkloadRedirected))
	g.Expect(out.Events).To(Equal([]plan.Event{{Type: corev1.EventTypeNormal, Reason: v1alpha1.EventRolloutComplete,
		Message: "Rollout of Deployment/a completed", Workload: ptr.To(ref(v1alpha1.KindDeployment, "a"))}}))
	g.Expect(out.RequeueAfter).To(BeZero())

	in.Policy = withStatus(p, roundTrip(g, out.Status))
	again := plan.Complete(plan.Decide(in), nil)
	g.Expect(again.Events).To(BeEmpty())
}

func TestStaleCacheIsRollingAndNotAnnotatedAgain(t *testing.T) {
	g := NewWithT(t)
	// The operator annotated generation 1 into generation 2, but the cache still shows generation 1.
	a := deployment("a", containers(container("web", readiness(tcpSocket(8080)))))
	p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, 5*time.Second)))
	in := input(p, a)

	d, out := decide(in)

	g.Expect(d.Annotate).To(BeEmpty())
	g.Expect(workloadStatus(g, out.Status, deploymentRef("a"))).To(And(
		HaveField("State", v1alpha1.WorkloadRolling), HaveField("Reason", v1alpha1.StatusReasonRolloutStarted)))
	g.Expect(out.Status.Rollouts).To(Equal(p.Status.Rollouts))
	g.Expect(out.Status.Summary.AnnotatedWorkloads).To(BeEquivalentTo(1))
	g.Expect(out.Events).To(BeEmpty())
	expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress, true, false)
}

func TestVerificationOnLivePods(t *testing.T) {
	probesOf := containers(container("web", httpPort(),
		readiness(httpGet(8080, "/ready")), liveness(tcpSocket(8080)), startupProbe(execProbe("true"))))
	done := func(opts ...workloadOption) plan.Workload {
		return deployment("web", append([]workloadOption{probesOf, annotated(), managed(), generation(2)}, opts...)...)
	}
	type want struct {
		state        v1alpha1.WorkloadState
		reason       v1alpha1.StatusReason
		probeState   v1alpha1.ProbeState
		probeReason  v1alpha1.StatusReason
		probeMessage string
		summary      v1alpha1.PolicySummary
		ready        metav1.ConditionStatus
		readyReason  v1alpha1.ConditionReason
	}
	tests := []struct {
		name     string
		workload plan.Workload
		pods     func(t *testing.T, w plan.Workload) []*corev1.Pod
		want     want
	}{
		{
			name:     "pods from the annotated template, rewritten by the mesh",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{livePod(t, w, "x1"), livePod(t, w, "x2")}
			},
			want: want{v1alpha1.WorkloadRedirected, "ProbesRewritten", v1alpha1.ProbeRewritten, "VerifiedOnPods", "verified on 2 pod(s)",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, RewrittenProbes: 2},
				metav1.ConditionTrue, v1alpha1.ReasonRedirected},
		},
		{
			name:     "a pod that predates the annotation",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{livePod(t, w, "x1"), livePod(t, w, "old", fromOldTemplate())}
			},
			// A complete rollout that leaves old pods (a partition, pods kept on purpose) needs a person.
			want: want{v1alpha1.WorkloadManualRolloutRequired, "PodsOnOldTemplate", v1alpha1.ProbePendingRollout, "PodsOnOldTemplate", "1 of 2 pods predate the annotation",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, PendingProbes: 2},
				metav1.ConditionFalse, v1alpha1.ReasonManualRolloutRequired},
		},
		{
			name:     "a pod carrying the annotation without a sidecar",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{podOf(w, "bare")}
			},
			want: want{v1alpha1.WorkloadUnsupported, "NotRewrittenByMesh", v1alpha1.ProbeNotRewritten, "NoSidecar",
				"pod web-" + podHash + "-bare: probe not rewritten (NoSidecar)",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, PendingProbes: 2},
				metav1.ConditionFalse, v1alpha1.ReasonUnsupportedProbes},
		},
		{
			name:     "one good pod does not hide a bad one",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{livePod(t, w, "x1"), podOf(w, "x2")}
			},
			want: want{v1alpha1.WorkloadUnsupported, "NotRewrittenByMesh", v1alpha1.ProbeNotRewritten, "NoSidecar",
				"pod web-" + podHash + "-x2: probe not rewritten (NoSidecar)",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, PendingProbes: 2},
				metav1.ConditionFalse, v1alpha1.ReasonUnsupportedProbes},
		},
		{
			name:     "the first pod that is not rewritten is named",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{livePod(t, w, "x1"), podOf(w, "x2"), podOf(w, "x3")}
			},
			want: want{v1alpha1.WorkloadUnsupported, "NotRewrittenByMesh", v1alpha1.ProbeNotRewritten, "NoSidecar",
				"pod web-" + podHash + "-x2: probe not rewritten (NoSidecar)",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, PendingProbes: 2},
				metav1.ConditionFalse, v1alpha1.ReasonUnsupportedProbes},
		},
		{
			name:     "terminating pods are ignored",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				return []*corev1.Pod{livePod(t, w, "x1"), livePod(t, w, "old", fromOldTemplate(), terminating()), podOf(w, "gone", terminating())}
			},
			want: want{v1alpha1.WorkloadRedirected, "ProbesRewritten", v1alpha1.ProbeRewritten, "VerifiedOnPods", "verified on 1 pod(s)",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, RewrittenProbes: 2},
				metav1.ConditionTrue, v1alpha1.ReasonRedirected},
		},
		{
			name:     "pods of other workloads are ignored",
			workload: done(),
			pods: func(t *testing.T, w plan.Workload) []*corev1.Pod {
				other := deployment("web-canary", probesOf)
				return []*corev1.Pod{livePod(t, w, "x1"), livePod(t, other, "x1"), livePod(t, statefulSet("web", probesOf), "0")}
			},
			want: want{v1alpha1.WorkloadRedirected, "ProbesRewritten", v1alpha1.ProbeRewritten, "VerifiedOnPods", "verified on 1 pod(s)",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, RewrittenProbes: 2},
				metav1.ConditionTrue, v1alpha1.ReasonRedirected},
		},
		{
			name:     "rolled out with zero pods: the template is annotated",
			workload: done(scaledTo(0)),
			pods:     func(*testing.T, plan.Workload) []*corev1.Pod { return nil },
			want: want{v1alpha1.WorkloadRedirected, "ProbesRewritten", v1alpha1.ProbeRewritten, "TemplateAnnotated", "no pods to verify; new pods get the rewrite",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, RolledOutWorkloads: 1, RewrittenProbes: 2},
				metav1.ConditionTrue, v1alpha1.ReasonRedirected},
		},
		{
			name:     "rolling with zero pods: pending",
			workload: done(rolling()),
			pods:     func(*testing.T, plan.Workload) []*corev1.Pod { return nil },
			want: want{v1alpha1.WorkloadRolling, "RolloutInProgress", v1alpha1.ProbePendingRollout, "RolloutInProgress", "no pod from the annotated template yet",
				v1alpha1.PolicySummary{SelectedWorkloads: 1, AnnotatedWorkloads: 1, PendingProbes: 2},
				metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := input(policy(), tt.workload)
			istioOf(in).MTLS = resolver(strictNamespace())
			in.Pods = tt.pods(t, tt.workload)
			// The namespace's Istio is known (from istiod), so the template's labels, not the live
			// pods, say whether the workload is in the mesh.
			istioOf(in).Istio = istio("1.30.3")

			d, out := decide(in)

			g.Expect(d.Annotate).To(BeEmpty())
			ws := workloadStatus(g, out.Status, tt.workload.Ref())
			g.Expect(ws.State).To(Equal(tt.want.state), ws.Message)
			g.Expect(ws.Reason).To(Equal(tt.want.reason), ws.Message)
			g.Expect(ws.Probes).To(HaveLen(3))
			for _, p := range ws.Probes[:2] {
				g.Expect(p).To(And(HaveField("State", tt.want.probeState), HaveField("Reason", tt.want.probeReason),
					HaveField("Message", tt.want.probeMessage)), "%s probe", p.Kind)
			}
			g.Expect(ws.Probes[2]).To(And(HaveField("Handler", v1alpha1.HandlerExec), HaveField("State", v1alpha1.ProbeNotNeeded)))
			g.Expect(out.Status.Summary).To(Equal(tt.want.summary))
			g.Expect(condition(out.Status, v1alpha1.ConditionReady)).To(haveCondition(tt.want.ready, tt.want.readyReason))
		})
	}
}

func TestRedirectedMessageSaysWhoAnnotated(t *testing.T) {
	tests := []struct {
		name    string
		managed bool
		message string
	}{
		{"the operator", true, "annotated by the operator; probes verified on live pods"},
		{"its owner", false, "annotated by its owner; probes verified on live pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := deployment("web", annotated(), func(w *plan.Workload) { w.ManagedByOperator = tt.managed })
			in := input(policy(), w)
			in.Pods = []*corev1.Pod{livePod(t, w, "x1")}

			_, out := decide(in)

			g.Expect(workloadStatus(g, out.Status, w.Ref())).To(And(
				HaveField("State", v1alpha1.WorkloadRedirected), HaveField("Message", tt.message)))
		})
	}
}

func TestManualRolloutRequired(t *testing.T) {
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	tests := []struct {
		name     string
		workload plan.Workload
		reason   v1alpha1.StatusReason
	}{
		{"paused Deployment", deployment("a", tcp, annotated(), managed(), generation(2), rolling(), paused()), "DeploymentPaused"},
		{"OnDelete StatefulSet", statefulSet("a", tcp, annotated(), managed(), generation(2), rolling(), onDelete()), "OnDeleteStrategy"},
		{"OnDelete DaemonSet", daemonSet("a", tcp, annotated(), managed(), generation(2), rolling(), onDelete()), "OnDeleteStrategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := tt.workload.Ref()
			p := policy(rollouts(record(r.Kind, r.Name, 2, time.Minute)))

			_, out := decide(input(p, tt.workload))

			ws := workloadStatus(g, out.Status, r)
			g.Expect(ws.State).To(Equal(v1alpha1.WorkloadManualRolloutRequired))
			g.Expect(ws.Reason).To(Equal(tt.reason))
			g.Expect(ws.Message).To(HavePrefix("the template is annotated, but new pods come only when a person acts: "))
			// A person has to act: the operator forgets the rollout and its deadline.
			g.Expect(out.Status.Rollouts).To(BeEmpty())
			g.Expect(out.RequeueAfter).To(BeZero())
			expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonManualRolloutRequired, false, false)
			g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal(
				"1 workload(s) are annotated but need a manual rollout (paused or OnDelete)"))

			// It does not hold a rollout slot.
			d := plan.Decide(input(p, tt.workload, deployment("b", tcp)))
			g.Expect(d.Annotate).To(Equal([]plan.Ref{deploymentRef("b")}))
		})
	}
}

func TestUnhealthyPods(t *testing.T) {
	g := NewWithT(t)
	web := deployment("web", label("tier", "web"))
	db := statefulSet("db", label("tier", "web"))
	other := deployment("other", label("tier", "batch"))
	webPod, dbPod, otherPod := livePod(t, web, "x1"), livePod(t, db, "0"), livePod(t, other, "x1")
	in := input(policy(matchLabels("tier", "web")), web, db, other)
	in.Pods = []*corev1.Pod{webPod, dbPod, otherPod}
	notAPod := unhealthyEvent("web", "Readiness probe failed: x", 1, now.Add(-time.Minute))
	notAPod.InvolvedObject.Kind = "Deployment"
	backOff := unhealthyEvent(webPod.Name, "Back-off restarting failed container", 1, now.Add(-time.Minute))
	backOff.Reason = "BackOff"
	in.Events = []corev1.Event{
		unhealthyEvent(webPod.Name, "Readiness probe failed: HTTP probe failed with statuscode: 503", 3, now.Add(-5*time.Minute)),
		unhealthyEvent(webPod.Name, "Liveness probe failed: Get \"http://10.0.0.7:8080/live\": context deadline exceeded", 1, now.Add(-30*time.Second)),
		unhealthyEvent(dbPod.Name, "Startup probe failed: dial tcp 10.0.0.8:5432: connect: connection refused", 2, now.Add(-8*time.Minute)),
		unhealthyEvent(dbPod.Name, "Readiness probe failed: too old", 5, now.Add(-11*time.Minute)),
		unhealthyEvent(otherPod.Name, "Readiness probe failed: unselected workload", 1, now.Add(-time.Minute)),
		unhealthyEvent("web-"+podHash+"-gone", "Readiness probe failed: deleted pod", 1, now.Add(-time.Minute)),
		notAPod,
		backOff,
	}

	_, out := decide(in)

	g.Expect(out.Status.UnhealthyPods).To(Equal([]v1alpha1.UnhealthyPod{
		{Pod: webPod.Name, WorkloadKind: v1alpha1.KindDeployment, Workload: "web", ProbeKind: v1alpha1.ProbeLiveness, Count: 4,
			LastMessage: "Liveness probe failed: Get \"http://10.0.0.7:8080/live\": context deadline exceeded",
			LastSeen:    ptr.To(metav1.NewTime(now.Add(-30 * time.Second).Truncate(time.Second)))},
		{Pod: dbPod.Name, WorkloadKind: v1alpha1.KindStatefulSet, Workload: "db", ProbeKind: v1alpha1.ProbeStartup, Count: 2,
			LastMessage: "Startup probe failed: dial tcp 10.0.0.8:5432: connect: connection refused",
			LastSeen:    ptr.To(metav1.NewTime(now.Add(-8 * time.Minute).Truncate(time.Second)))},
	}))
	g.Expect(out.Status.Summary.UnhealthyPods).To(BeEquivalentTo(2))
	probesHealthy := condition(out.Status, v1alpha1.ConditionProbesHealthy)
	g.Expect(probesHealthy).To(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonUnhealthyPods))
	g.Expect(probesHealthy.Message).To(Equal("2 pod(s) reported Unhealthy; latest " + webPod.Name +
		": Liveness probe failed: Get \"http://10.0.0.7:8080/live\": context deadline exceeded"))
	// The db pod's record leaves the window first: 8 minutes ago plus a 10-minute window, plus a second.
	g.Expect(out.RequeueAfter).To(Equal(2*time.Minute + time.Second))
	// Unhealthy pods do not change readiness.
	expectReady(g, out.Status, metav1.ConditionTrue, v1alpha1.ReasonNothingToRedirect, false, false)
}

func TestNoUnhealthyPods(t *testing.T) {
	g := NewWithT(t)
	web := deployment("web")
	in := input(policy(), web)
	in.Pods = []*corev1.Pod{livePod(t, web, "x1")}
	in.Events = []corev1.Event{unhealthyEvent(in.Pods[0].Name, "Readiness probe failed: old", 1, now.Add(-window))}

	_, out := decide(in)

	g.Expect(out.Status.UnhealthyPods).To(BeNil())
	g.Expect(out.Status.Summary.UnhealthyPods).To(BeZero())
	g.Expect(condition(out.Status, v1alpha1.ConditionProbesHealthy)).To(haveCondition(metav1.ConditionTrue, v1alpha1.ReasonNoUnhealthyEvents))
	g.Expect(out.RequeueAfter).To(BeZero())
}

func TestUnhealthyPodsAreBounded(t *testing.T) {
	g := NewWithT(t)
	web := deployment("web", scaledTo(60))
	in := input(policy(), web)
	for i := range 60 {
		pod := podOf(web, fmt.Sprintf("p%02d", i))
		in.Pods = append(in.Pods, pod)
		// p00 is the most recent, p59 the oldest.
		in.Events = append(in.Events, unhealthyEvent(pod.Name, "Readiness probe failed: 503", 1, now.Add(-time.Duration(i+1)*time.Second)))
	}

	_, out := decide(in)

	g.Expect(out.Status.Summary.UnhealthyPods).To(BeEquivalentTo(60))
	g.Expect(out.Status.UnhealthyPods).To(HaveLen(v1alpha1.MaxUnhealthyPodEntries))
	for i, u := range out.Status.UnhealthyPods {
		g.Expect(u.Pod).To(Equal(fmt.Sprintf("web-%s-p%02d", podHash, i)), "entry %d", i)
	}
	g.Expect(condition(out.Status, v1alpha1.ConditionProbesHealthy).Message).To(HavePrefix("60 pod(s) reported Unhealthy; latest web-" + podHash + "-p00: "))
	// The oldest record (p59, 60s ago) leaves the window first, even though the list no longer shows it.
	g.Expect(out.RequeueAfter).To(Equal(window - 60*time.Second + time.Second))
}

func TestWorkloadListIsBoundedMostUrgentFirst(t *testing.T) {
	g := NewWithT(t)
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	older := policy(named("older", now.Add(-2*time.Hour).Truncate(time.Second)), matchLabels("shared", "true"))
	var workloads []plan.Workload
	add := func(n int, prefix string, opts ...workloadOption) {
		for i := range n {
			workloads = append(workloads, deployment(fmt.Sprintf("%s-%03d", prefix, i), opts...))
		}
	}
	// Named so that kind-and-name order is the opposite of urgency.
	add(30, "a-notinmesh", tcp, label("sidecar.istio.io/inject", "false"))
	add(40, "b-notneeded", containers(container("web", readiness(execProbe("true")))))
	add(40, "c-redirected", tcp, annotated())
	add(3, "d-conflict", tcp, label("shared", "true"))
	add(5, "e-unsupported", tcp, templateAnnotation(istiomesh.RewriteAnnotation, "yes"))
	add(2, "f-failed", tcp, annotated(), generation(2), rolling(), deadlineExceeded())
	in := input(policy(rollouts(record(v1alpha1.KindDeployment, "f-failed-000", 2, 20*time.Minute),
		record(v1alpha1.KindDeployment, "f-failed-001", 2, 20*time.Minute))), workloads...)
	in.Policies = []*v1alpha1.ProbeRedirectPolicy{older, in.Policy}

	_, out := decide(in)

	g.Expect(out.Status.Summary.SelectedWorkloads).To(BeEquivalentTo(120))
	g.Expect(out.Status.Workloads).To(HaveLen(v1alpha1.MaxWorkloadEntries))
	count := map[v1alpha1.WorkloadState]int{}
	var order []v1alpha1.WorkloadState
	for _, w := range out.Status.Workloads {
		count[w.State]++
		if len(order) == 0 || order[len(order)-1] != w.State {
			order = append(order, w.State)
		}
	}
	g.Expect(order).To(Equal([]v1alpha1.WorkloadState{v1alpha1.WorkloadRolloutFailed, v1alpha1.WorkloadUnsupported,
		v1alpha1.WorkloadConflict, v1alpha1.WorkloadRedirected, v1alpha1.WorkloadNotNeeded, v1alpha1.WorkloadNotInMesh}))
	g.Expect(count).To(Equal(map[v1alpha1.WorkloadState]int{v1alpha1.WorkloadRolloutFailed: 2, v1alpha1.WorkloadUnsupported: 5,
		v1alpha1.WorkloadConflict: 3, v1alpha1.WorkloadRedirected: 40, v1alpha1.WorkloadNotNeeded: 40, v1alpha1.WorkloadNotInMesh: 10}))
	// Within a state, kind-and-name order.
	g.Expect(out.Status.Workloads[0].Name).To(Equal("f-failed-000"))
	g.Expect(out.Status.Workloads[99].Name).To(Equal("a-notinmesh-009"))
	// The Ready message names at most five workloads.
	g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal("Rollout failed for Deployment/f-failed-000, Deployment/f-failed-001"))
}

func TestReadyMessageNamesAtMostFiveWorkloads(t *testing.T) {
	g := NewWithT(t)
	var workloads []plan.Workload
	for i := range 7 {
		workloads = append(workloads, deployment(fmt.Sprintf("u%d", i), containers(container("app", readiness(tcpSocket(80)))),
			templateAnnotation(istiomesh.RewriteAnnotation, "on")))
	}

	_, out := decide(input(policy(), workloads...))

	g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal(
		"Probes cannot be redirected safely for Deployment/u0, Deployment/u1, Deployment/u2, Deployment/u3, Deployment/u4 and 2 more (see status.workloads)"))
}

// TestIdleMeansIdle: once the status written by one reconcile is read back and nothing else
// changed, the next reconcile decides nothing, records nothing and writes the same status.
func TestIdleMeansIdle(t *testing.T) {
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	tests := []struct {
		name  string
		setup func(t *testing.T) plan.Input
	}{
		{
			name: "redirected with unhealthy pods",
			setup: func(t *testing.T) plan.Input {
				w := deployment("web", tcp, annotated(), managed(), generation(2))
				in := input(policy(), w, deployment("batch", containers(container("web", readiness(execProbe("true"))))))
				in.Pods = []*corev1.Pod{livePod(t, w, "x1")}
				in.Events = []corev1.Event{unhealthyEvent(in.Pods[0].Name, "Readiness probe failed: 503", 3, now.Add(-time.Minute+123*time.Millisecond))}
				return in
			},
		},
		{
			name: "rolling with one in flight and others waiting",
			setup: func(t *testing.T) plan.Input {
				p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute)))
				return input(p, deployment("a", tcp, annotated(), managed(), generation(2), rolling()), deployment("b", tcp), statefulSet("c", tcp))
			},
		},
		{
			name: "rollout failed, others paused",
			setup: func(t *testing.T) plan.Input {
				p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Hour)))
				return input(p, deployment("a", tcp, annotated(), managed(), generation(2), rolling()), deployment("b", tcp))
			},
		},
		{
			name: "conflict, unsupported and suspended",
			setup: func(t *testing.T) plan.Input {
				in := input(policy(suspended()), deployment("a", tcp, label("shared", "yes")),
					deployment("b", tcp, templateAnnotation(istiomesh.RewriteAnnotation, "yes")), deployment("c", tcp))
				in.Policies = append(in.Policies, policy(named("older", now.Add(-2*time.Hour)), matchLabels("shared", "yes")))
				return in
			},
		},
		{
			name: "manual rollout required",
			setup: func(t *testing.T) plan.Input {
				return input(policy(), deployment("a", tcp, annotated(), managed(), generation(2), rolling(), paused()))
			},
		},
		{
			name: "invalid selector",
			setup: func(t *testing.T) plan.Input {
				return input(policy(selector(nil)), deployment("a", tcp))
			},
		},
		{
			name: "nothing selected",
			setup: func(t *testing.T) plan.Input {
				return input(policy(matchLabels("app", "none")), deployment("a", tcp))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := tt.setup(t)
			first := plan.Decide(in)
			g.Expect(first.Annotate).To(BeEmpty(), "the scenario must be settled")
			written := roundTrip(g, plan.Complete(first, nil).Status)

			for _, later := range []time.Duration{0, 30 * time.Second} {
				next := in
				next.Policy = withStatus(in.Policy, written)
				next.Policies = append([]*v1alpha1.ProbeRedirectPolicy{next.Policy}, in.Policies[1:]...)
				next.Now = now.Add(later)

				d := plan.Decide(next)
				out := plan.Complete(d, nil)

				g.Expect(d.Annotate).To(BeEmpty())
				g.Expect(out.Events).To(BeEmpty(), "after %s", later)
				g.Expect(apiequality.Semantic.DeepEqual(out.Status, written)).To(BeTrue(),
					"after %s the status changed:\nwritten: %+v\n    now: %+v", later, written, out.Status)
			}
		})
	}
}

func startupProbe(h corev1.ProbeHandler) containerOption {
	return func(c *corev1.Container) { c.StartupProbe = &corev1.Probe{ProbeHandler: h} }
}

// TestSidecarProbeFailuresAreNotTheApps: the kubelet reports istio-proxy's own readiness probe
// (15021) failing on most pod starts. Those events name the container in involvedObject.fieldPath;
// they never make the app's ProbesHealthy False, and the app's own failures name their container.
func TestSidecarProbeFailuresAreNotTheApps(t *testing.T) {
	g := NewWithT(t)
	web := deployment("web")
	pod := livePod(t, web, "x1")
	in := input(policy(), web)
	in.Pods = []*corev1.Pod{pod}
	inContainer := func(e corev1.Event, fieldPath string) corev1.Event {
		e.InvolvedObject.FieldPath = fieldPath
		return e
	}
	sidecar := inContainer(unhealthyEvent(pod.Name, "Readiness probe failed: Get \"http://10.0.0.7:15021/healthz/ready\": dial tcp 10.0.0.7:15021: connect: connection refused", 4, now.Add(-time.Minute)),
		"spec.containers{istio-proxy}")
	nativeSidecar := inContainer(unhealthyEvent(pod.Name, "Startup probe failed: HTTP probe failed with statuscode: 503", 1, now.Add(-30*time.Second)),
		"spec.initContainers{istio-proxy}")
	in.Events = []corev1.Event{sidecar, nativeSidecar}

	_, out := decide(in)
	g.Expect(out.Status.UnhealthyPods).To(BeEmpty())
	g.Expect(condition(out.Status, v1alpha1.ConditionProbesHealthy)).To(haveCondition(metav1.ConditionTrue, v1alpha1.ReasonNoUnhealthyEvents))

	app := inContainer(unhealthyEvent(pod.Name, "Readiness probe failed: HTTP probe failed with statuscode: 500", 2, now.Add(-2*time.Minute)),
		"spec.containers{web}")
	in.Events = append(in.Events, app)
	_, out = decide(in)
	g.Expect(out.Status.UnhealthyPods).To(ConsistOf(And(HaveField("Container", "web"), HaveField("Count", BeEquivalentTo(2)),
		HaveField("ProbeKind", v1alpha1.ProbeReadiness), HaveField("LastMessage", "Readiness probe failed: HTTP probe failed with statuscode: 500"))))
	g.Expect(condition(out.Status, v1alpha1.ConditionProbesHealthy)).To(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonUnhealthyPods))
}
