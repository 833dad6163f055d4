package plan_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

const (
	ns            = "shop"
	rootNamespace = "istio-system"
	// podHash is the pod-template-hash of every Deployment's ReplicaSet in these tests.
	podHash = "5d8f7b9c4"
	window  = 10 * time.Minute
)

// now is the fixed clock of every decision; it has a sub-second part on purpose, because the API
// server keeps times at second precision.
var now = time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)

// meshNamespace are the labels of a namespace with sidecar injection on.
var meshNamespace = map[string]string{"istio-injection": "enabled", "kubernetes.io/metadata.name": ns}

var config = plan.Config{UnhealthyWindow: window}

// injector is Istio's injector with the probe rewrite opt-in, so only annotated pods are rewritten.
var injector = meshdouble.Config{StatusPort: istiomesh.DefaultStatusPort}

// ---- containers and probes ----

type containerOption func(*corev1.Container)

func container(name string, opts ...containerOption) corev1.Container {
	c := corev1.Container{Name: name, Image: "registry.example/" + name + ":1"}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// httpPort declares container port 8080 named "http".
func httpPort() containerOption {
	return func(c *corev1.Container) {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: "http", ContainerPort: 8080})
	}
}

func readiness(h corev1.ProbeHandler) containerOption {
	return func(c *corev1.Container) { c.ReadinessProbe = &corev1.Probe{ProbeHandler: h} }
}

func liveness(h corev1.ProbeHandler) containerOption {
	return func(c *corev1.Container) { c.LivenessProbe = &corev1.Probe{ProbeHandler: h} }
}

func httpGet(p int, path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt(p), Path: path}}
}

func httpGetNamed(name, path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString(name), Path: path}}
}

func httpGetHost(host string, p int, path string) corev1.ProbeHandler {
	h := httpGet(p, path)
	h.HTTPGet.Host = host
	return h
}

func tcpSocket(p int) corev1.ProbeHandler {
	return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(p)}}
}

func grpcProbe(p int32) corev1.ProbeHandler {
	return corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: p}}
}

func execProbe(cmd ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
}

// webContainer is the default container: an HTTP readiness probe on port 8080.
func webContainer() corev1.Container {
	return container("web", httpPort(), readiness(httpGet(8080, "/ready")))
}

// ---- workloads ----

// asDeployment returns the Deployment a workload built by deployment() holds.
func asDeployment(w *plan.Workload) *appsv1.Deployment { return w.Object.(*appsv1.Deployment) }

// workloadOption changes a workload of any kind.
type workloadOption func(*plan.Workload)

func newWorkload(w plan.Workload, opts []workloadOption) plan.Workload {
	for _, o := range opts {
		o(&w)
	}
	return w
}

func templateOf(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{webContainer()}},
	}
}

// deployment is a Deployment at generation 1 whose single replica is rolled out.
func deployment(name string, opts ...workloadOption) plan.Workload {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: templateOf(name),
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1},
	}
	return newWorkload(plan.NewWorkload(plan.KindOf(v1alpha1.KindDeployment), d, false), opts)
}

// statefulSet is a RollingUpdate StatefulSet at generation 1 whose single replica is rolled out.
func statefulSet(name string, opts ...workloadOption) plan.Workload {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas:       ptr.To[int32](1),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template:       templateOf(name),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
		},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 1, ReadyReplicas: 1, CurrentReplicas: 1, UpdatedReplicas: 1,
			CurrentRevision: name + "-1", UpdateRevision: name + "-1"},
	}
	return newWorkload(plan.NewWorkload(plan.KindOf(v1alpha1.KindStatefulSet), s, false), opts)
}

// daemonSet is a RollingUpdate DaemonSet at generation 1 scheduled on one node and rolled out.
func daemonSet(name string, opts ...workloadOption) plan.Workload {
	d := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template:       templateOf(name),
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
		},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
			UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1},
	}
	return newWorkload(plan.NewWorkload(plan.KindOf(v1alpha1.KindDaemonSet), d, false), opts)
}

func containers(cs ...corev1.Container) workloadOption {
	return func(w *plan.Workload) { w.Template().Spec.Containers = cs }
}

func label(key, value string) workloadOption {
	return func(w *plan.Workload) { w.Template().Labels[key] = value }
}

func templateAnnotation(key, value string) workloadOption {
	return func(w *plan.Workload) {
		t := w.Template()
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[key] = value
	}
}

// annotated puts rewriteAppHTTPProbers=true on the template.
func annotated() workloadOption { return templateAnnotation(istiomesh.RewriteAnnotation, "true") }

// managed says the operator's field manager owns the annotation.
func managed() workloadOption { return func(w *plan.Workload) { w.ManagedByOperator = true } }

// generation sets metadata.generation and lets the workload controller observe it.
func generation(g int64) workloadOption {
	return func(w *plan.Workload) {
		w.Object.SetGeneration(g)
		observedGeneration(g)(w)
	}
}

// observedGeneration sets only status.observedGeneration: the workload controller lags behind.
func observedGeneration(g int64) workloadOption {
	return func(w *plan.Workload) {
		switch o := w.Object.(type) {
		case *appsv1.Deployment:
			o.Status.ObservedGeneration = g
		case *appsv1.StatefulSet:
			o.Status.ObservedGeneration = g
		case *appsv1.DaemonSet:
			o.Status.ObservedGeneration = g
		}
	}
}

// rolling makes the rollout incomplete: no replica is updated yet.
func rolling() workloadOption {
	return func(w *plan.Workload) {
		switch o := w.Object.(type) {
		case *appsv1.Deployment:
			o.Status.UpdatedReplicas = 0
		case *appsv1.StatefulSet:
			o.Status.UpdateRevision = o.Name + "-2"
			o.Status.UpdatedReplicas = 0
		case *appsv1.DaemonSet:
			o.Status.UpdatedNumberScheduled = 0
		}
	}
}

// deadlineExceeded gives a Deployment the Progressing condition the Deployment controller sets when
// its own progress deadline passes.
func deadlineExceeded() workloadOption {
	return func(w *plan.Workload) {
		asDeployment(w).Status.Conditions = append(asDeployment(w).Status.Conditions, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"})
	}
}

// scaledTo sets a Deployment's replicas, all of them updated and available.
func scaledTo(n int32) workloadOption {
	return func(w *plan.Workload) {
		asDeployment(w).Spec.Replicas = ptr.To(n)
		st := &asDeployment(w).Status
		st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas = n, n, n, n
	}
}

func paused() workloadOption { return func(w *plan.Workload) { asDeployment(w).Spec.Paused = true } }

func onDelete() workloadOption {
	return func(w *plan.Workload) {
		switch o := w.Object.(type) {
		case *appsv1.StatefulSet:
			o.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		case *appsv1.DaemonSet:
			o.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}
	}
}

// ---- pods ----

type podOption func(*corev1.Pod)

// podOf is a pod created from w's current template by w's controller, with the owner reference
// and labels the controller sets, as the API server stores it before injection.
func podOf(w plan.Workload, suffix string, opts ...podOption) *corev1.Pod {
	t := w.Template().DeepCopy()
	name := w.Object.GetName()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: t.Labels, Annotations: t.Annotations},
		Spec:       t.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Name: name, Controller: ptr.To(true), UID: types.UID("uid-" + name)}
	switch w.Kind() {
	case v1alpha1.KindDeployment:
		owner.Kind, owner.Name = "ReplicaSet", name+"-"+podHash
		pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = podHash
		pod.Name = name + "-" + podHash + "-" + suffix
	case v1alpha1.KindStatefulSet:
		owner.Kind = "StatefulSet"
		pod.Name = name + "-" + suffix
	default:
		owner.Kind = "DaemonSet"
		pod.Name = name + "-" + suffix
	}
	pod.OwnerReferences = []metav1.OwnerReference{owner}
	for _, o := range opts {
		o(pod)
	}
	return pod
}

// livePod is podOf after the mesh double admitted it, as the cache shows a running pod.
func livePod(t *testing.T, w plan.Workload, suffix string, opts ...podOption) *corev1.Pod {
	t.Helper()
	pod := podOf(w, suffix, opts...)
	if _, err := meshdouble.Inject(pod, injector); err != nil {
		t.Fatalf("injecting %s: %v", pod.Name, err)
	}
	return pod
}

// fromOldTemplate drops the rewrite annotation: the pod predates it.
func fromOldTemplate() podOption {
	return func(p *corev1.Pod) {
		anns := map[string]string{}
		for k, v := range p.Annotations {
			if k != istiomesh.RewriteAnnotation {
				anns[k] = v
			}
		}
		p.Annotations = anns
	}
}

func terminating() podOption {
	return func(p *corev1.Pod) {
		ts := metav1.NewTime(now.Add(-time.Minute))
		p.DeletionTimestamp = &ts
	}
}

// ---- policies ----

type policyOption func(*v1alpha1.ProbeRedirectPolicy)

// policy is "redirect", created an hour ago, selecting every workload (selector: {}).
func policy(opts ...policyOption) *v1alpha1.ProbeRedirectPolicy {
	p := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "redirect", UID: "uid-redirect", Generation: 1,
			CreationTimestamp: metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))},
		Spec: v1alpha1.ProbeRedirectPolicySpec{Selector: &v1alpha1.LabelSelector{}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func named(name string, created time.Time) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) {
		p.Name, p.UID, p.CreationTimestamp = name, types.UID("uid-"+name), metav1.NewTime(created)
	}
}

func matchLabels(kv ...string) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) {
		ml := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			ml[kv[i]] = kv[i+1]
		}
		p.Spec.Selector = v1alpha1.FromLabelSelector(&metav1.LabelSelector{MatchLabels: ml})
	}
}

func selector(s *metav1.LabelSelector) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Selector = v1alpha1.FromLabelSelector(s) }
}

func kinds(ks ...v1alpha1.WorkloadKind) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.WorkloadKinds = ks }
}

func probeTypes(ts ...v1alpha1.ProbeType) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.ProbeTypes = ts }
}

func triggerAlways() policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Trigger = v1alpha1.TriggerAlways }
}

func maxConcurrent(n int32) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = n }
}

func pauseOnFailure(b bool) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.PauseOnFailure = ptr.To(b) }
}

func suspended() policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Suspend = ptr.To(true) }
}

func deleting() policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) {
		ts := metav1.NewTime(now.Add(-time.Minute).Truncate(time.Second))
		p.DeletionTimestamp = &ts
		p.Spec.OnDelete = v1alpha1.DeletionPolicyRestore
	}
}

func rollouts(records ...v1alpha1.RolloutRecord) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Status.Rollouts = records }
}

// record is a RolloutRecord of a Deployment started age ago.
func record(kind v1alpha1.WorkloadKind, name string, gen int64, age time.Duration) v1alpha1.RolloutRecord {
	return v1alpha1.RolloutRecord{Kind: kind, Name: name, Generation: gen, StartedAt: ptr.To(metav1.NewTime(now.Add(-age).Truncate(time.Second)))}
}

// ---- PeerAuthentications ----

type paOption func(*securityv1.PeerAuthentication)

func peerAuth(name string, mode securityapi.PeerAuthentication_MutualTLS_Mode, opts ...paOption) *securityv1.PeerAuthentication {
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(now.Add(-24 * time.Hour).Truncate(time.Second))}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	for _, o := range opts {
		o(pa)
	}
	return pa
}

func selecting(kv ...string) paOption {
	return func(pa *securityv1.PeerAuthentication) {
		ml := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			ml[kv[i]] = kv[i+1]
		}
		pa.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: ml}
	}
}

func portLevel(p uint32, mode securityapi.PeerAuthentication_MutualTLS_Mode) paOption {
	return func(pa *securityv1.PeerAuthentication) {
		if pa.Spec.PortLevelMtls == nil {
			pa.Spec.PortLevelMtls = map[uint32]*securityapi.PeerAuthentication_MutualTLS{}
		}
		pa.Spec.PortLevelMtls[p] = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	}
}

const (
	strict     = securityapi.PeerAuthentication_MutualTLS_STRICT
	permissive = securityapi.PeerAuthentication_MutualTLS_PERMISSIVE
	disable    = securityapi.PeerAuthentication_MutualTLS_DISABLE
	unset      = securityapi.PeerAuthentication_MutualTLS_UNSET
)

// strictNamespace is a namespace-wide STRICT PeerAuthentication.
func strictNamespace() *securityv1.PeerAuthentication { return peerAuth("default", strict) }

func resolver(pas ...*securityv1.PeerAuthentication) *istiomesh.Resolver {
	return istiomesh.NewResolver(rootNamespace, pas)
}

// istio is a known Istio version, as read from istiod.
func istio(v string) istiomesh.IstioVersion {
	return istiomesh.IstioVersion{Version: version.MustParseGeneric(v), Source: "istiod image"}
}

// ---- events ----

func unhealthyEvent(pod, message string, count int32, lastSeen time.Time) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%d", pod, lastSeen.UnixNano())},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod},
		Reason:         "Unhealthy",
		Type:           corev1.EventTypeWarning,
		Message:        message,
		Count:          count,
		LastTimestamp:  metav1.NewTime(lastSeen),
	}
}

// ---- inputs and runs ----

// input is what the controller observes for p in a mesh namespace with no PeerAuthentication.
func input(p *v1alpha1.ProbeRedirectPolicy, ws ...plan.Workload) plan.Input {
	return plan.Input{
		Policy:    p,
		Policies:  []*v1alpha1.ProbeRedirectPolicy{p},
		Workloads: ws,
		Meshes: []mesh.Mesh{&istiomesh.View{Namespace: p.Namespace, NamespaceLabels: meshNamespace, MTLS: resolver(),
			StatusPort: istiomesh.DefaultStatusPort}},
		Now:    now,
		Config: config,
	}
}

// istioOf returns the Istio mesh of an input made by input, to change what the namespace shows.
func istioOf(in plan.Input) *istiomesh.View {
	return in.Meshes[0].(*istiomesh.View)
}

// applied is what the controller reports when every workload of d's Annotate or Restore was
// changed and reached generation gen.
func applied(d plan.Decision, gen int64) map[plan.Ref]plan.ApplyResult {
	results := map[plan.Ref]plan.ApplyResult{}
	for _, ref := range append(append([]plan.Ref(nil), d.Annotate...), d.Restore...) {
		results[ref] = plan.ApplyResult{Generation: gen}
	}
	return results
}

// decide runs Decide and Complete with nothing applied (the controller did not get to it).
func decide(in plan.Input) (plan.Decision, plan.Outcome) {
	d := plan.Decide(in)
	return d, plan.Complete(d, nil)
}

// roundTrip returns status as it reads back from the API server (JSON, times at second precision).
func roundTrip(g Gomega, status v1alpha1.ProbeRedirectPolicyStatus) v1alpha1.ProbeRedirectPolicyStatus {
	raw, err := json.Marshal(status)
	g.Expect(err).NotTo(HaveOccurred())
	var out v1alpha1.ProbeRedirectPolicyStatus
	g.Expect(json.Unmarshal(raw, &out)).To(Succeed())
	return out
}

// withStatus returns a copy of p carrying status, as the next reconcile reads it.
func withStatus(p *v1alpha1.ProbeRedirectPolicy, status v1alpha1.ProbeRedirectPolicyStatus) *v1alpha1.ProbeRedirectPolicy {
	next := p.DeepCopy()
	next.Status = status
	return next
}

// ---- status accessors ----

func ref(kind v1alpha1.WorkloadKind, name string) plan.Ref { return plan.Ref{Kind: kind, Name: name} }

func deploymentRef(name string) plan.Ref { return ref(v1alpha1.KindDeployment, name) }

func workloadStatus(g Gomega, status v1alpha1.ProbeRedirectPolicyStatus, r plan.Ref) v1alpha1.WorkloadStatus {
	for _, w := range status.Workloads {
		if w.Kind == r.Kind && w.Name == r.Name {
			return w
		}
	}
	g.Expect(status.Workloads).To(ContainElement(HaveField("Name", r.Name)), "no status for %s", r)
	return v1alpha1.WorkloadStatus{}
}

func refsOf(ws []v1alpha1.WorkloadStatus) []plan.Ref {
	var out []plan.Ref
	for _, w := range ws {
		out = append(out, ref(w.Kind, w.Name))
	}
	return out
}

func condition(status v1alpha1.ProbeRedirectPolicyStatus, kind v1alpha1.ConditionType) metav1.Condition {
	if c := meta.FindStatusCondition(status.Conditions, string(kind)); c != nil {
		return *c
	}
	return metav1.Condition{Type: string(kind), Status: "Absent"}
}

// haveCondition matches a condition by status and reason.
func haveCondition(status metav1.ConditionStatus, reason v1alpha1.ConditionReason) OmegaMatcher {
	return And(HaveField("Status", status), HaveField("Reason", string(reason)))
}

// expectReady checks Ready, Reconciling and Stalled at once.
func expectReady(g Gomega, status v1alpha1.ProbeRedirectPolicyStatus, ready metav1.ConditionStatus, reason v1alpha1.ConditionReason, reconciling, stalled bool) {
	g.ExpectWithOffset(1, condition(status, v1alpha1.ConditionReady)).To(haveCondition(ready, reason), "Ready")
	wantReconciling, wantStalled := metav1.ConditionFalse, metav1.ConditionFalse
	if reconciling {
		wantReconciling = metav1.ConditionTrue
	}
	if stalled {
		wantStalled = metav1.ConditionTrue
	}
	g.ExpectWithOffset(1, condition(status, v1alpha1.ConditionReconciling).Status).To(Equal(wantReconciling), "Reconciling")
	g.ExpectWithOffset(1, condition(status, v1alpha1.ConditionStalled).Status).To(Equal(wantStalled), "Stalled")
}
