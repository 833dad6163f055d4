package plan_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

func TestDecideSelectsByKindAndTemplateLabels(t *testing.T) {
	workloads := []plan.Workload{
		deployment("api", label("tier", "web")),
		deployment("worker", label("tier", "batch")),
		statefulSet("db", label("tier", "data")),
		daemonSet("agent"),
	}
	tests := []struct {
		name   string
		policy *v1alpha1.ProbeRedirectPolicy
		want   []plan.Ref
	}{
		{
			name:   "empty selector selects every workload",
			policy: policy(),
			want: []plan.Ref{deploymentRef("api"), deploymentRef("worker"),
				ref(v1alpha1.KindStatefulSet, "db"), ref(v1alpha1.KindDaemonSet, "agent")},
		},
		{
			name:   "workloadKinds filters kinds",
			policy: policy(kinds(v1alpha1.KindStatefulSet, v1alpha1.KindDaemonSet)),
			want:   []plan.Ref{ref(v1alpha1.KindStatefulSet, "db"), ref(v1alpha1.KindDaemonSet, "agent")},
		},
		{
			name:   "matchLabels matches the pod template labels",
			policy: policy(matchLabels("tier", "web")),
			want:   []plan.Ref{deploymentRef("api")},
		},
		{
			name: "matchExpressions",
			policy: policy(selector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"batch", "data"}}}})),
			want: []plan.Ref{deploymentRef("worker"), ref(v1alpha1.KindStatefulSet, "db")},
		},
		{
			name:   "kinds and labels both apply",
			policy: policy(matchLabels("tier", "data"), kinds(v1alpha1.KindDeployment)),
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, out := decide(input(tt.policy, workloads...))
			g.Expect(refsOf(out.Status.Workloads)).To(ConsistOf(tt.want))
			g.Expect(out.Status.Summary.SelectedWorkloads).To(BeEquivalentTo(len(tt.want)))
		})
	}
}

func TestInvalidSelectorStallsAndWarnsOnce(t *testing.T) {
	tests := []struct {
		name     string
		selector *metav1.LabelSelector
		message  string
	}{
		{
			name:     "unknown operator",
			selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}},
			message:  "Invalid spec.selector: ",
		},
		{
			name:     "invalid label value",
			selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "not a value"}},
			message:  "Invalid spec.selector: ",
		},
		{
			name:     "missing selector",
			selector: nil,
			message:  "Invalid spec.selector: spec.selector is required; write selector: {} to select every workload",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := policy(selector(tt.selector))
			in := input(p, deployment("api"))
			istioOf(in).MTLS = resolver(strictNamespace())

			d := plan.Decide(in)
			g.Expect(d.Annotate).To(BeEmpty())
			out := plan.Complete(d, nil)

			expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector, false, true)
			g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(HavePrefix(tt.message))
			g.Expect(condition(out.Status, v1alpha1.ConditionStalled).Reason).To(Equal(string(v1alpha1.ReasonInvalidSelector)))
			g.Expect(out.Status.Workloads).To(BeNil())
			g.Expect(out.Status.Summary).To(Equal(v1alpha1.PolicySummary{}))
			g.Expect(out.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
			for _, c := range out.Status.Conditions {
				g.Expect(c.LastTransitionTime.Time).To(Equal(now.Truncate(time.Second)), "%s: the API server keeps seconds", c.Type)
				g.Expect(c.ObservedGeneration).To(Equal(p.Generation), c.Type)
			}
			g.Expect(out.Status.Conditions).To(HaveLen(4))
			g.Expect(out.Status.ObservedGeneration).To(Equal(p.Generation))
			g.Expect(out.Events).To(ConsistOf(And(
				HaveField("Type", corev1.EventTypeWarning),
				HaveField("Reason", v1alpha1.EventInvalidSelector),
				HaveField("Message", HavePrefix(tt.message)))))
			g.Expect(out.RequeueAfter).To(BeZero())

			// The next reconcile reads the status back: no new event, same status.
			in.Policy = withStatus(p, roundTrip(g, out.Status))
			in.Now = now.Add(time.Minute)
			again := plan.Complete(plan.Decide(in), nil)
			g.Expect(again.Events).To(BeEmpty())
			g.Expect(apiequality.Semantic.DeepEqual(again.Status, in.Policy.Status)).To(BeTrue(), "status changed:\n%v\n%v", again.Status, in.Policy.Status)
		})
	}
}

func TestNeedRules(t *testing.T) {
	type want struct {
		state        v1alpha1.WorkloadState
		probeState   v1alpha1.ProbeState
		probeReason  v1alpha1.StatusReason
		probeMessage string
		probeMTLS    v1alpha1.MTLSMode
		workloadMTLS v1alpha1.MTLSMode
	}
	queued := func(message string, probeMTLS, workloadMTLS v1alpha1.MTLSMode) want {
		return want{v1alpha1.WorkloadQueued, v1alpha1.ProbePendingRollout, "Queued", message, probeMTLS, workloadMTLS}
	}
	notNeeded := func(reason v1alpha1.StatusReason, message string, probeMTLS, workloadMTLS v1alpha1.MTLSMode) want {
		return want{v1alpha1.WorkloadNotNeeded, v1alpha1.ProbeNotNeeded, reason, message, probeMTLS, workloadMTLS}
	}
	const (
		S = v1alpha1.MTLSStrict
		P = v1alpha1.MTLSPermissive
		D = v1alpha1.MTLSDisable
	)
	tests := []struct {
		name   string
		policy []policyOption
		probe  containerOption
		pas    []*securityv1.PeerAuthentication
		want   want
	}{
		{
			name:   "exec probes are never needed, even with trigger Always",
			policy: []policyOption{triggerAlways()},
			probe:  readiness(execProbe("cat", "/tmp/ready")),
			pas:    []*securityv1.PeerAuthentication{strictNamespace()},
			want:   notNeeded("ExecProbe", "exec probes run inside the container; the sidecar does not intercept them", "", S),
		},
		{
			name:   "probeTypes filters handlers",
			policy: []policyOption{probeTypes(v1alpha1.ProbeTypeHTTP)},
			probe:  readiness(tcpSocket(8080)),
			want:   notNeeded("ProbeTypeNotSelected", "spec.probeTypes does not include TCP", P, P),
		},
		{
			name:   "probeTypes filter applies before trigger Always",
			policy: []policyOption{probeTypes(v1alpha1.ProbeTypeTCP), triggerAlways()},
			probe:  readiness(grpcProbe(9090)),
			want:   notNeeded("ProbeTypeNotSelected", "spec.probeTypes does not include GRPC", P, P),
		},
		{
			name:   "trigger Always needs an HTTP probe on a permissive port",
			policy: []policyOption{triggerAlways()},
			probe:  readiness(httpGet(8080, "/ready")),
			want:   queued("spec.trigger is Always", P, P),
		},
		{
			name:  "TCP probes are always needed in the mesh",
			probe: readiness(tcpSocket(8080)),
			pas:   []*securityv1.PeerAuthentication{peerAuth("default", disable)},
			want:  queued("the sidecar accepts every TCP connection, so the probe passes even when the app is down", D, D),
		},
		{
			name:  "HTTP on a permissive port is not needed",
			probe: readiness(httpGet(8080, "/ready")),
			want:  notNeeded("PortNotStrict", "mTLS mode on port 8080 is PERMISSIVE, so the kubelet reaches the app", P, P),
		},
		{
			name:  "HTTP under namespace STRICT is needed",
			probe: readiness(httpGet(8080, "/ready")),
			pas:   []*securityv1.PeerAuthentication{strictNamespace()},
			want:  queued("STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate", S, S),
		},
		{
			name:  "GRPC under namespace STRICT is needed",
			probe: readiness(grpcProbe(9090)),
			pas:   []*securityv1.PeerAuthentication{strictNamespace()},
			want:  queued("STRICT mTLS on port 9090 rejects the kubelet, which has no mesh certificate", S, S),
		},
		{
			name:  "a mesh-wide STRICT policy in the root namespace counts",
			probe: readiness(httpGet(8080, "/ready")),
			pas: []*securityv1.PeerAuthentication{func() *securityv1.PeerAuthentication {
				pa := peerAuth("mesh", strict)
				pa.Namespace = rootNamespace
				return pa
			}()},
			want: queued("STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate", S, S),
		},
		{
			name:  "port-level PERMISSIVE on the probed port overrides namespace STRICT",
			probe: readiness(httpGet(8080, "/ready")),
			pas: []*securityv1.PeerAuthentication{strictNamespace(),
				peerAuth("web-ports", unset, selecting("app", "web"), portLevel(8080, permissive))},
			want: notNeeded("PortNotStrict", "mTLS mode on port 8080 is PERMISSIVE, so the kubelet reaches the app", P, S),
		},
		{
			name:  "port-level override on another port leaves the probed port STRICT",
			probe: readiness(httpGet(8080, "/ready")),
			pas: []*securityv1.PeerAuthentication{strictNamespace(),
				peerAuth("web-ports", unset, selecting("app", "web"), portLevel(9090, disable))},
			want: queued("STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate", S, S),
		},
		{
			name:  "port-level STRICT on a named port, resolved through the container",
			probe: readiness(httpGetNamed("http", "/ready")),
			pas:   []*securityv1.PeerAuthentication{peerAuth("web-ports", permissive, selecting("app", "web"), portLevel(8080, strict))},
			want:  queued("STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate", S, P),
		},
		{
			name:  "workload-level STRICT overrides namespace PERMISSIVE",
			probe: readiness(httpGet(8080, "/ready")),
			pas:   []*securityv1.PeerAuthentication{peerAuth("default", permissive), peerAuth("web", strict, selecting("app", "web"))},
			want:  queued("STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate", S, S),
		},
		{
			name:  "workload-level DISABLE overrides namespace STRICT",
			probe: readiness(httpGet(8080, "/ready")),
			pas:   []*securityv1.PeerAuthentication{strictNamespace(), peerAuth("web", disable, selecting("app", "web"))},
			want:  notNeeded("PortNotStrict", "mTLS mode on port 8080 is DISABLE, so the kubelet reaches the app", D, D),
		},
		{
			name:  "a workload policy selecting other labels does not apply",
			probe: readiness(httpGet(8080, "/ready")),
			pas:   []*securityv1.PeerAuthentication{strictNamespace(), peerAuth("other", disable, selecting("app", "other"))},
			want:  queued("STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate", S, S),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := deployment("web", containers(container("web", httpPort(), tt.probe)))
			in := input(policy(tt.policy...), w)
			istioOf(in).MTLS = resolver(tt.pas...)

			d, out := decide(in)

			ws := workloadStatus(g, out.Status, deploymentRef("web"))
			g.Expect(ws.State).To(Equal(tt.want.state), ws.Message)
			g.Expect(ws.MTLSMode).To(Equal(tt.want.workloadMTLS))
			g.Expect(ws.Probes).To(HaveLen(1))
			g.Expect(ws.Probes[0]).To(And(
				HaveField("State", tt.want.probeState),
				HaveField("Reason", tt.want.probeReason),
				HaveField("Message", tt.want.probeMessage),
				HaveField("MTLSMode", tt.want.probeMTLS)))
			if tt.want.state == v1alpha1.WorkloadQueued {
				g.Expect(d.Annotate).To(Equal([]plan.Ref{deploymentRef("web")}))
				g.Expect(out.Status.Summary.PendingProbes).To(BeEquivalentTo(1))
			} else {
				g.Expect(d.Annotate).To(BeEmpty())
				g.Expect(out.Status.Summary.PendingProbes).To(BeZero())
				expectReady(g, out.Status, metav1.ConditionTrue, v1alpha1.ReasonNothingToRedirect, false, false)
			}
		})
	}
}

func TestProbeStatusDescribesOriginalAndRewrittenTargets(t *testing.T) {
	g := NewWithT(t)
	w := deployment("web", containers(
		container("web", httpPort(),
			readiness(httpGetNamed("http", "ready")),
			liveness(tcpSocket(8080))),
		container("cache", readiness(execProbe("redis-cli", "ping")), liveness(grpcProbe(9090)))))
	in := input(policy(), w)
	istioOf(in).MTLS = resolver(strictNamespace())

	_, out := decide(in)

	ws := workloadStatus(g, out.Status, deploymentRef("web"))
	g.Expect(ws.Probes).To(Equal([]v1alpha1.ProbeStatus{
		{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerHTTP, MTLSMode: v1alpha1.MTLSStrict,
			Original: "HTTP :8080/ready", Rewritten: "HTTP :15020/app-health/web/readyz", State: v1alpha1.ProbePendingRollout,
			Reason: "Queued", Message: "STRICT mTLS on port 8080 rejects the kubelet, which has no mesh certificate"},
		{Container: "web", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerTCP, MTLSMode: v1alpha1.MTLSStrict,
			Original: "TCP :8080", Rewritten: "HTTP :15020/app-health/web/livez", State: v1alpha1.ProbePendingRollout,
			Reason: "Queued", Message: "the sidecar accepts every TCP connection, so the probe passes even when the app is down"},
		{Container: "cache", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerExec,
			Original: "exec redis-cli ping", State: v1alpha1.ProbeNotNeeded,
			Reason: "ExecProbe", Message: "exec probes run inside the container; the sidecar does not intercept them"},
		{Container: "cache", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerGRPC, MTLSMode: v1alpha1.MTLSStrict,
			Original: "GRPC :9090", Rewritten: "HTTP :15020/app-health/cache/livez", State: v1alpha1.ProbePendingRollout,
			Reason: "Queued", Message: "STRICT mTLS on port 9090 rejects the kubelet, which has no mesh certificate"},
	}))
	g.Expect(out.Status.Summary.PendingProbes).To(BeEquivalentTo(3))
}

func TestWorkloadStates(t *testing.T) {
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	tests := []struct {
		name            string
		namespaceLabels map[string]string
		policy          []policyOption
		workload        plan.Workload
		state           v1alpha1.WorkloadState
		reason          v1alpha1.StatusReason
		probes          []v1alpha1.ProbeState
		probeReasons    []v1alpha1.StatusReason
		ready           metav1.ConditionStatus
		readyReason     v1alpha1.ConditionReason
		stalled         bool
	}{
		{
			name:            "namespace without an injection label is not in the mesh",
			namespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			workload:        deployment("web", tcp),
			state:           v1alpha1.WorkloadNotInMesh, reason: v1alpha1.StatusReasonNoInjectionLabel,
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeNotInMesh}, probeReasons: []v1alpha1.StatusReason{v1alpha1.StatusReasonNoInjectionLabel},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
		{
			name:            "namespace with injection disabled",
			namespaceLabels: map[string]string{"istio-injection": "disabled"},
			workload:        deployment("web", tcp, label("sidecar.istio.io/inject", "true")),
			state:           v1alpha1.WorkloadNotInMesh, reason: v1alpha1.StatusReasonNamespaceInjectionDisabled,
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeNotInMesh}, probeReasons: []v1alpha1.StatusReason{v1alpha1.StatusReasonNamespaceInjectionDisabled},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
		{
			name:     "pod template opting out of injection",
			workload: deployment("web", tcp, label("sidecar.istio.io/inject", "false")),
			state:    v1alpha1.WorkloadNotInMesh, reason: v1alpha1.StatusReasonPodInjectionDisabled,
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeNotInMesh}, probeReasons: []v1alpha1.StatusReason{v1alpha1.StatusReasonPodInjectionDisabled},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
		{
			name:            "pod template label injects in an unlabelled namespace",
			namespaceLabels: map[string]string{},
			workload:        deployment("web", tcp, label("sidecar.istio.io/inject", "true")),
			state:           v1alpha1.WorkloadQueued, reason: "Queued",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbePendingRollout}, probeReasons: []v1alpha1.StatusReason{"Queued"},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonRolloutInProgress,
		},
		{
			name:     "rewrite annotation false opts out",
			workload: deployment("web", tcp, templateAnnotation(istiomesh.RewriteAnnotation, "false")),
			state:    v1alpha1.WorkloadOptedOut, reason: "RewriteDisabledByUser",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeOptedOut}, probeReasons: []v1alpha1.StatusReason{"RewriteDisabledByUser"},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
		{
			name:     "rewrite annotation yes is not a boolean",
			workload: deployment("web", tcp, templateAnnotation(istiomesh.RewriteAnnotation, "yes")),
			state:    v1alpha1.WorkloadUnsupported, reason: "InvalidRewriteAnnotation",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeUnsupported}, probeReasons: []v1alpha1.StatusReason{"InvalidRewriteAnnotation"},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonUnsupportedProbes, stalled: true,
		},
		{
			name:     "unparsable status port",
			workload: deployment("web", tcp, templateAnnotation(istiomesh.StatusPortAnnotation, "abc")),
			state:    v1alpha1.WorkloadUnsupported, reason: "InvalidStatusPort",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeUnsupported}, probeReasons: []v1alpha1.StatusReason{"InvalidStatusPort"},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonUnsupportedProbes, stalled: true,
		},
		{
			name: "httpGet.host set on one probe makes the workload unsupported; the other needed probe waits",
			workload: deployment("web", containers(container("web",
				readiness(httpGetHost("10.0.0.1", 8080, "/ready")), liveness(tcpSocket(8080))))),
			state: v1alpha1.WorkloadUnsupported, reason: "HostSet",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeUnsupported, v1alpha1.ProbePendingRollout}, probeReasons: []v1alpha1.StatusReason{"HostSet", "WorkloadUnsupported"},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonUnsupportedProbes, stalled: true,
		},
		{
			name:     "named port the container does not declare",
			workload: deployment("web", containers(container("web", readiness(tcpSocket(8080)), liveness(httpGetNamed("admin", "/live"))))),
			state:    v1alpha1.WorkloadUnsupported, reason: "NamedPortNotDeclared",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbePendingRollout, v1alpha1.ProbeUnsupported}, probeReasons: []v1alpha1.StatusReason{"WorkloadUnsupported", "NamedPortNotDeclared"},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonUnsupportedProbes, stalled: true,
		},
		{
			name:     "status port switched off with 0",
			workload: deployment("web", tcp, templateAnnotation(istiomesh.StatusPortAnnotation, "0")),
			state:    v1alpha1.WorkloadUnsupported, reason: "StatusPortDisabled",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeUnsupported}, probeReasons: []v1alpha1.StatusReason{"StatusPortDisabled"},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonUnsupportedProbes, stalled: true,
		},
		{
			name:     "a hazard on a workload that needs nothing is not reported",
			workload: deployment("web", containers(container("web", readiness(httpGetHost("10.0.0.1", 8080, "/ready"))))),
			state:    v1alpha1.WorkloadNotNeeded, reason: "NoProbeNeedsRedirect",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeNotNeeded}, probeReasons: []v1alpha1.StatusReason{"PortNotStrict"},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
		{
			name:     "suspended policy changes nothing",
			policy:   []policyOption{suspended()},
			workload: deployment("web", tcp),
			state:    v1alpha1.WorkloadSuspended, reason: v1alpha1.StatusReasonSuspended,
			probes: []v1alpha1.ProbeState{v1alpha1.ProbePendingRollout}, probeReasons: []v1alpha1.StatusReason{v1alpha1.StatusReasonSuspended},
			ready: metav1.ConditionFalse, readyReason: v1alpha1.ReasonSuspended,
		},
		{
			name:     "suspended policy still reports an opted-out workload",
			policy:   []policyOption{suspended()},
			workload: deployment("web", tcp, templateAnnotation(istiomesh.RewriteAnnotation, "0")),
			state:    v1alpha1.WorkloadOptedOut, reason: "RewriteDisabledByUser",
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeOptedOut}, probeReasons: []v1alpha1.StatusReason{"RewriteDisabledByUser"},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
		{
			name:     "exec probes keep NotNeeded when the workload is not in the mesh",
			workload: deployment("web", containers(container("web", readiness(execProbe("true")))), label("sidecar.istio.io/inject", "false")),
			state:    v1alpha1.WorkloadNotInMesh, reason: v1alpha1.StatusReasonPodInjectionDisabled,
			probes: []v1alpha1.ProbeState{v1alpha1.ProbeNotNeeded}, probeReasons: []v1alpha1.StatusReason{"ExecProbe"},
			ready: metav1.ConditionTrue, readyReason: v1alpha1.ReasonNothingToRedirect,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := input(policy(tt.policy...), tt.workload)
			if tt.namespaceLabels != nil {
				istioOf(in).NamespaceLabels = tt.namespaceLabels
			}

			d, out := decide(in)

			ws := workloadStatus(g, out.Status, tt.workload.Ref())
			g.Expect(ws.State).To(Equal(tt.state), ws.Message)
			g.Expect(ws.Reason).To(Equal(tt.reason), ws.Message)
			var states []v1alpha1.ProbeState
			var reasons []v1alpha1.StatusReason
			for _, p := range ws.Probes {
				states, reasons = append(states, p.State), append(reasons, p.Reason)
			}
			g.Expect(states).To(Equal(tt.probes))
			g.Expect(reasons).To(Equal(tt.probeReasons))
			if tt.state == v1alpha1.WorkloadQueued {
				g.Expect(d.Annotate).To(ConsistOf(tt.workload.Ref()))
			} else {
				g.Expect(d.Annotate).To(BeEmpty())
			}
			expectReady(g, out.Status, tt.ready, tt.readyReason, tt.readyReason == v1alpha1.ReasonRolloutInProgress, tt.stalled)
			if tt.stalled {
				g.Expect(out.Events).To(ConsistOf(HaveField("Type", corev1.EventTypeWarning)))
			} else {
				g.Expect(out.Events).To(BeEmpty())
			}
		})
	}
}

func TestConflictWithAnOlderPolicy(t *testing.T) {
	base := now.Add(-time.Hour).Truncate(time.Second)
	tests := []struct {
		name     string
		current  *v1alpha1.ProbeRedirectPolicy
		other    *v1alpha1.ProbeRedirectPolicy
		conflict bool
		owner    string
	}{
		{
			name:     "an older policy manages the workload",
			current:  policy(named("newer", base)),
			other:    policy(named("older", base.Add(-time.Minute))),
			conflict: true, owner: "older",
		},
		{
			name:    "a newer policy does not take it away",
			current: policy(named("older", base.Add(-time.Minute))),
			other:   policy(named("newer", base)),
		},
		{
			name:     "same creationTimestamp: the name decides",
			current:  policy(named("bravo", base)),
			other:    policy(named("alpha", base)),
			conflict: true, owner: "alpha",
		},
		{
			name:    "same creationTimestamp, current name first",
			current: policy(named("alpha", base)),
			other:   policy(named("bravo", base)),
		},
		{
			name:    "an older policy being deleted no longer manages",
			current: policy(named("newer", base)),
			other:   policy(named("older", base.Add(-time.Minute)), deleting()),
		},
		{
			name:    "an older policy selecting other kinds does not conflict",
			current: policy(named("newer", base)),
			other:   policy(named("older", base.Add(-time.Minute)), kinds(v1alpha1.KindDaemonSet)),
		},
		{
			name:    "an older policy with an invalid selector does not conflict",
			current: policy(named("newer", base)),
			other:   policy(named("older", base.Add(-time.Minute)), selector(nil)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := deployment("web", containers(container("web", readiness(tcpSocket(8080)))))
			pod := livePod(t, w, "x1")
			in := input(tt.current, w)
			in.Policies = []*v1alpha1.ProbeRedirectPolicy{tt.other, tt.current}
			in.Pods = []*corev1.Pod{pod}
			in.Events = []corev1.Event{unhealthyEvent(pod.Name, "Readiness probe failed: connection refused", 1, now.Add(-time.Minute))}

			d, out := decide(in)

			ws := workloadStatus(g, out.Status, w.Ref())
			if !tt.conflict {
				g.Expect(ws.State).To(Equal(v1alpha1.WorkloadQueued))
				g.Expect(d.Annotate).To(ConsistOf(w.Ref()))
				g.Expect(out.Status.Summary.UnhealthyPods).To(BeEquivalentTo(1))
				return
			}
			g.Expect(ws).To(Equal(v1alpha1.WorkloadStatus{Kind: v1alpha1.KindDeployment, Name: "web", State: v1alpha1.WorkloadConflict,
				Reason: v1alpha1.StatusReasonConflict, Message: `older policy "` + tt.owner + `" selects this workload and manages it`}))
			g.Expect(d.Annotate).To(BeEmpty())
			expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonConflict, false, true)
			g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal("An older policy manages Deployment/web"))
			g.Expect(out.Events).To(ConsistOf(And(HaveField("Type", corev1.EventTypeWarning), HaveField("Reason", v1alpha1.EventConflict))))
			// The managing policy reports the pod; this one does not.
			g.Expect(out.Status.UnhealthyPods).To(BeEmpty())
			g.Expect(out.Status.Summary.UnhealthyPods).To(BeZero())
			g.Expect(condition(out.Status, v1alpha1.ConditionProbesHealthy)).To(haveCondition(metav1.ConditionTrue, v1alpha1.ReasonNoUnhealthyEvents))
		})
	}
}

func TestConflictConsidersTheCurrentPolicyEvenWhenTheListLacksIt(t *testing.T) {
	g := NewWithT(t)
	base := now.Add(-time.Hour).Truncate(time.Second)
	current := policy(named("older", base.Add(-time.Minute)))
	in := input(current, deployment("web", containers(container("web", readiness(tcpSocket(8080))))))
	in.Policies = []*v1alpha1.ProbeRedirectPolicy{policy(named("newer", base))} // a stale list without the current policy

	d, out := decide(in)

	g.Expect(workloadStatus(g, out.Status, deploymentRef("web")).State).To(Equal(v1alpha1.WorkloadQueued))
	g.Expect(d.Annotate).To(ConsistOf(deploymentRef("web")))
}

func TestRolloutGate(t *testing.T) {
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	queued := func(name string) plan.Workload { return deployment(name, tcp) }
	inFlight := func(name string) plan.Workload {
		return deployment(name, tcp, annotated(), managed(), generation(2), rolling())
	}
	tests := []struct {
		name      string
		policy    []policyOption
		workloads []plan.Workload
		annotate  []plan.Ref
		reasons   map[plan.Ref]v1alpha1.StatusReason
		messages  map[plan.Ref]string
		states    map[plan.Ref]v1alpha1.WorkloadState
		requeue   time.Duration
	}{
		{
			name:      "maxConcurrent 1 admits the first in kind and name order",
			workloads: []plan.Workload{daemonSet("a", tcp), statefulSet("a", tcp), queued("c"), queued("b")},
			annotate:  []plan.Ref{deploymentRef("b")},
			reasons: map[plan.Ref]v1alpha1.StatusReason{
				deploymentRef("b"): "Queued", deploymentRef("c"): "WaitingForRolloutSlot",
				ref(v1alpha1.KindStatefulSet, "a"): "WaitingForRolloutSlot", ref(v1alpha1.KindDaemonSet, "a"): "WaitingForRolloutSlot"},
		},
		{
			name:      "maxConcurrent 2 admits two",
			policy:    []policyOption{maxConcurrent(2)},
			workloads: []plan.Workload{statefulSet("a", tcp), queued("c"), queued("b")},
			annotate:  []plan.Ref{deploymentRef("b"), deploymentRef("c")},
			reasons:   map[plan.Ref]v1alpha1.StatusReason{ref(v1alpha1.KindStatefulSet, "a"): "WaitingForRolloutSlot"},
		},
		{
			name:      "a rollout in flight takes the only slot",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute))},
			workloads: []plan.Workload{inFlight("a"), queued("b"), queued("c")},
			annotate:  nil,
			reasons: map[plan.Ref]v1alpha1.StatusReason{deploymentRef("a"): "RolloutInProgress",
				deploymentRef("b"): "WaitingForRolloutSlot", deploymentRef("c"): "WaitingForRolloutSlot"},
			messages: map[plan.Ref]string{deploymentRef("b"): "1 of 1 concurrent rollout(s) in progress"},
			states:   map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolling},
			// The record started at 11:59:00; its deadline is 12:09:00 and now is 12:00:00.5.
			requeue: 9*time.Minute - 500*time.Millisecond,
		},
		{
			// The operator stopped between applying the annotation and writing the record: the
			// rollout is adopted (a record from now), so it holds the slot. See also
			// TestSomeoneElsesRolloutOnARedirectedWorkloadHoldsNoSlot.
			name:      "an operator-annotated rollout whose record was lost is adopted and holds the slot",
			workloads: []plan.Workload{inFlight("a"), queued("b")},
			annotate:  nil,
			reasons:   map[plan.Ref]v1alpha1.StatusReason{deploymentRef("b"): "WaitingForRolloutSlot"},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolling},
			// Adopted now (12:00:00.5, stored at second precision): the deadline is 12:10:00.
			requeue: 10*time.Minute - 500*time.Millisecond,
		},
		{
			name:      "a rollout its owner started does not take a slot",
			workloads: []plan.Workload{deployment("a", tcp, annotated(), generation(2), rolling()), queued("b")},
			annotate:  []plan.Ref{deploymentRef("b")},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolling},
		},
		{
			name:      "a stale cache that has not seen the annotation yet is rolling and in flight",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute))},
			workloads: []plan.Workload{queued("a"), queued("b")},
			annotate:  nil,
			reasons:   map[plan.Ref]v1alpha1.StatusReason{deploymentRef("a"): "RolloutStarted", deploymentRef("b"): "WaitingForRolloutSlot"},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolling},
		},
		{
			name:      "pauseOnFailure (the default) stops further rollouts after a missed deadline",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 2, 11*time.Minute))},
			workloads: []plan.Workload{inFlight("a"), queued("b"), queued("c")},
			annotate:  nil,
			reasons: map[plan.Ref]v1alpha1.StatusReason{deploymentRef("a"): "ProgressDeadlineExceeded",
				deploymentRef("b"): "PausedAfterFailure", deploymentRef("c"): "PausedAfterFailure"},
			messages: map[plan.Ref]string{deploymentRef("b"): "1 rollout(s) failed and rollout.pauseOnFailure is true"},
			states:   map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolloutFailed, deploymentRef("b"): v1alpha1.WorkloadQueued},
		},
		{
			name:      "the Deployment's own progress deadline fails a rollout the policy started",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute))},
			workloads: []plan.Workload{deployment("a", tcp, annotated(), managed(), generation(2), rolling(), deadlineExceeded()), queued("b")},
			annotate:  nil,
			reasons:   map[plan.Ref]v1alpha1.StatusReason{deploymentRef("a"): "ProgressDeadlineExceeded", deploymentRef("b"): "PausedAfterFailure"},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolloutFailed},
		},
		{
			name:      "an adopted rollout that missed the Deployment's deadline fails and pauses the policy",
			workloads: []plan.Workload{deployment("a", tcp, annotated(), managed(), generation(2), rolling(), deadlineExceeded()), queued("b")},
			annotate:  nil,
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolloutFailed},
		},
		{
			name:      "a rollout someone else started that missed the Deployment's deadline does not pause the policy",
			workloads: []plan.Workload{deployment("a", tcp, annotated(), generation(2), rolling(), deadlineExceeded()), queued("b")},
			annotate:  []plan.Ref{deploymentRef("b")},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolling},
		},
		{
			name:      "pauseOnFailure false admits the others; the failed rollout holds no slot",
			policy:    []policyOption{pauseOnFailure(false), rollouts(record(v1alpha1.KindDeployment, "a", 2, 11*time.Minute))},
			workloads: []plan.Workload{inFlight("a"), queued("b"), queued("c")},
			annotate:  []plan.Ref{deploymentRef("b")},
			reasons:   map[plan.Ref]v1alpha1.StatusReason{deploymentRef("a"): "ProgressDeadlineExceeded", deploymentRef("c"): "WaitingForRolloutSlot"},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolloutFailed},
		},
		{
			name:      "a deadline not yet passed is still rolling",
			policy:    []policyOption{rollouts(record(v1alpha1.KindDeployment, "a", 2, 10*time.Minute-time.Second))},
			workloads: []plan.Workload{inFlight("a")},
			states:    map[plan.Ref]v1alpha1.WorkloadState{deploymentRef("a"): v1alpha1.WorkloadRolling},
			// The record started at 11:50:01, so the deadline passes half a second from now.
			requeue: 500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := input(policy(tt.policy...), tt.workloads...)

			d, out := decide(in)

			g.Expect(d.Annotate).To(Equal(tt.annotate))
			for r, reason := range tt.reasons {
				g.Expect(workloadStatus(g, out.Status, r).Reason).To(Equal(reason), "%s", r)
			}
			for r, message := range tt.messages {
				g.Expect(workloadStatus(g, out.Status, r).Message).To(Equal(message), "%s", r)
			}
			for r, state := range tt.states {
				g.Expect(workloadStatus(g, out.Status, r).State).To(Equal(state), "%s", r)
			}
			g.Expect(out.RequeueAfter).To(Equal(tt.requeue))
		})
	}
}

func TestRolloutFailureIsReportedOncePerTransition(t *testing.T) {
	g := NewWithT(t)
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, 11*time.Minute)))
	in := input(p, deployment("a", tcp, annotated(), managed(), generation(2), rolling()), deployment("b", tcp))

	_, out := decide(in)

	expectReady(g, out.Status, metav1.ConditionFalse, v1alpha1.ReasonRolloutFailed, false, true)
	g.Expect(condition(out.Status, v1alpha1.ConditionReady).Message).To(Equal("Rollout failed for Deployment/a"))
	g.Expect(out.Events).To(ContainElement(And(
		HaveField("Type", corev1.EventTypeWarning),
		HaveField("Reason", v1alpha1.EventRolloutFailed),
		HaveField("Message", HavePrefix("Rollout of Deployment/a failed: rollout did not finish within 10m0s: ")))))
	// The record stays, so the failure survives restarts until the rollout completes.
	g.Expect(out.Status.Rollouts).To(Equal(p.Status.Rollouts))
	g.Expect(out.RequeueAfter).To(BeZero())

	in.Policy = withStatus(p, roundTrip(g, out.Status))
	in.Now = now.Add(time.Minute)
	again := plan.Complete(plan.Decide(in), nil)
	g.Expect(again.Events).To(BeEmpty())
	g.Expect(apiequality.Semantic.DeepEqual(again.Status, in.Policy.Status)).To(BeTrue())
}

func TestDecideDoesNotChangeItsInput(t *testing.T) {
	g := NewWithT(t)
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	a := deployment("a", tcp, annotated(), managed(), generation(2), rolling())
	b := deployment("b", tcp)
	p := policy(rollouts(record(v1alpha1.KindDeployment, "a", 2, time.Minute)))
	in := input(p, b, a)
	pod := livePod(t, a, "x1")
	in.Pods = []*corev1.Pod{pod}
	in.Events = []corev1.Event{unhealthyEvent(pod.Name, "Readiness probe failed: boom", 2, now.Add(-time.Minute))}
	before := struct {
		policy *v1alpha1.ProbeRedirectPolicy
		a, b   plan.Workload
		pod    *corev1.Pod
		events []corev1.Event
	}{p.DeepCopy(), deployment("a", tcp, annotated(), managed(), generation(2), rolling()), deployment("b", tcp), pod.DeepCopy(), append([]corev1.Event(nil), in.Events...)}

	d := plan.Decide(in)
	plan.Complete(d, map[plan.Ref]plan.ApplyResult{deploymentRef("b"): {Generation: 2}})

	g.Expect(p).To(Equal(before.policy))
	g.Expect(in.Workloads).To(Equal([]plan.Workload{before.b, before.a}), "the workload order is the caller's")
	g.Expect(pod).To(Equal(before.pod))
	g.Expect(in.Events).To(Equal(before.events))
}

// TestSomeoneElsesRolloutOnARedirectedWorkloadHoldsNoSlot: a workload the operator annotated long
// ago, whose live pods are redirected, rolls again because someone changed it (a new image): that
// rollout is theirs, holds no slot and gets no record.
func TestSomeoneElsesRolloutOnARedirectedWorkloadHoldsNoSlot(t *testing.T) {
	g := NewWithT(t)
	tcp := containers(container("web", readiness(tcpSocket(8080))))
	a := deployment("a", tcp, annotated(), managed(), generation(3), rolling())
	in := input(policy(), a, deployment("b", tcp))
	in.Pods = []*corev1.Pod{livePod(t, a, "x1")}

	d, out := decide(in)

	g.Expect(d.Annotate).To(Equal([]plan.Ref{deploymentRef("b")}))
	g.Expect(workloadStatus(g, out.Status, deploymentRef("a")).State).To(Equal(v1alpha1.WorkloadRolling))
	for _, r := range out.Status.Rollouts {
		g.Expect(r.Name).NotTo(Equal("a"), "no record for someone else's rollout")
	}
}
