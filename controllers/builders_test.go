package controllers_test

import (
	"sync"

	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/controllers"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

const (
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

// injector is the test double of Istio's sidecar injector, configured like a mesh where the probe
// rewrite is opt-in (Alibaba ASM, or Istio with rewriteAppHTTPProbe=false).
var injector = meshdouble.Config{RewriteAppHTTPProbe: false, StatusPort: istiomesh.DefaultStatusPort, ProxyImage: "docker.io/istio/proxyv2:1.30.3"}

// meshNamespace creates a namespace with sidecar injection on.
func meshNamespace(t *testing.T) string {
	return namespace(t, map[string]string{"istio-injection": "enabled"})
}

func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "prp-", Labels: labels}}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

type containerOption func(*corev1.Container)

func container(name string, opts ...containerOption) corev1.Container {
	c := corev1.Container{Name: name, Image: "registry.example/" + name + ":1"}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func port(name string, number int32) containerOption {
	return func(c *corev1.Container) {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: name, ContainerPort: number})
	}
}

func readiness(h corev1.ProbeHandler) containerOption {
	return func(c *corev1.Container) { c.ReadinessProbe = &corev1.Probe{ProbeHandler: h, PeriodSeconds: 5} }
}

func liveness(h corev1.ProbeHandler) containerOption {
	return func(c *corev1.Container) { c.LivenessProbe = &corev1.Probe{ProbeHandler: h, PeriodSeconds: 5} }
}

func httpGet(p intstr.IntOrString, path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: p, Path: path}}
}

func tcpSocket(p int) corev1.ProbeHandler {
	return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(p)}}
}

func execProbe(cmd ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
}

type templateOption func(*corev1.PodTemplateSpec)

// rewriteAnnotationValue sets the template's rewriteAppHTTPProbers annotation, as a person would.
func rewriteAnnotationValue(value string) templateOption {
	return func(t *corev1.PodTemplateSpec) {
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[istiomesh.RewriteAnnotation] = value
	}
}

func podTemplate(app string, containers []corev1.Container, opts ...templateOption) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: containers},
	}
	for _, o := range opts {
		o(&t)
	}
	return t
}

func createDeployment(t *testing.T, ns, name string, containers []corev1.Container, opts ...templateOption) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, containers, opts...),
		},
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), d)).To(Succeed())
	return d
}

type policyOption func(*v1alpha1.ProbeRedirectPolicy)

func maxConcurrent(n int32) policyOption {
	return func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = n }
}

func createPolicy(t *testing.T, ns, name string, matchLabels map[string]string, opts ...policyOption) *v1alpha1.ProbeRedirectPolicy {
	t.Helper()
	p := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: v1alpha1.FromLabelSelector(&metav1.LabelSelector{MatchLabels: matchLabels})},
	}
	for _, o := range opts {
		o(p)
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), p)).To(Succeed())
	return p
}

type peerAuthOption func(*securityv1.PeerAuthentication)

func selecting(labels map[string]string) peerAuthOption {
	return func(pa *securityv1.PeerAuthentication) {
		pa.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: labels}
	}
}

func portMode(port uint32, mode securityapi.PeerAuthentication_MutualTLS_Mode) peerAuthOption {
	return func(pa *securityv1.PeerAuthentication) {
		if pa.Spec.PortLevelMtls == nil {
			pa.Spec.PortLevelMtls = map[uint32]*securityapi.PeerAuthentication_MutualTLS{}
		}
		pa.Spec.PortLevelMtls[port] = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	}
}

func createPeerAuthentication(t *testing.T, ns, name string, mode securityapi.PeerAuthentication_MutualTLS_Mode, opts ...peerAuthOption) *securityv1.PeerAuthentication {
	t.Helper()
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	for _, o := range opts {
		o(pa)
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), pa)).To(Succeed())
	return pa
}

// eventuallyPolicy waits until the policy satisfies check and returns it.
func eventuallyPolicy(t *testing.T, p *v1alpha1.ProbeRedirectPolicy, check func(g Gomega, p *v1alpha1.ProbeRedirectPolicy)) *v1alpha1.ProbeRedirectPolicy {
	t.Helper()
	got := &v1alpha1.ProbeRedirectPolicy{}
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(p), got)).To(Succeed())
		check(g, got)
	}, timeout, interval).Should(Succeed())
	return got
}

func condition(p *v1alpha1.ProbeRedirectPolicy, kind v1alpha1.ConditionType) metav1.Condition {
	if c := meta.FindStatusCondition(p.Status.Conditions, string(kind)); c != nil {
		return *c
	}
	return metav1.Condition{Type: string(kind), Status: "Absent"}
}

func haveCondition(kind v1alpha1.ConditionType, status metav1.ConditionStatus, reason v1alpha1.ConditionReason) func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
	return func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		c := condition(p, kind)
		g.Expect(c.Status).To(Equal(status), "%s: %s", kind, c.Message)
		g.Expect(c.Reason).To(Equal(string(reason)), "%s: %s", kind, c.Message)
		g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
	}
}

func workload(p *v1alpha1.ProbeRedirectPolicy, kind v1alpha1.WorkloadKind, name string) v1alpha1.WorkloadStatus {
	for _, w := range p.Status.Workloads {
		if w.Kind == kind && w.Name == name {
			return w
		}
	}
	return v1alpha1.WorkloadStatus{Kind: kind, Name: name, State: "Absent"}
}

func haveWorkloadState(kind v1alpha1.WorkloadKind, name string, state v1alpha1.WorkloadState) func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
	return func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		w := workload(p, kind, name)
		g.Expect(w.State).To(Equal(state), "%s/%s: %s %s", kind, name, w.Reason, w.Message)
	}
}

// rewriteAnnotation returns the template's rewrite annotation and whether the operator's field
// manager owns it.
func rewriteAnnotation(t *testing.T, obj client.Object) (value string, present, ownedByOperator bool) {
	t.Helper()
	NewWithT(t).Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	var annotations map[string]string
	switch o := obj.(type) {
	case *appsv1.Deployment:
		annotations = o.Spec.Template.Annotations
	case *appsv1.StatefulSet:
		annotations = o.Spec.Template.Annotations
	case *appsv1.DaemonSet:
		annotations = o.Spec.Template.Annotations
	}
	value, present = annotations[istiomesh.RewriteAnnotation]
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == controllers.FieldOwner && mf.FieldsV1 != nil &&
			strings.Contains(mf.FieldsV1.GetRawString(), `"f:`+istiomesh.RewriteAnnotation+`"`) {
			ownedByOperator = true
		}
	}
	return value, present, ownedByOperator
}

func eventuallyAnnotated(t *testing.T, obj client.Object) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		value, _, owned := rewriteAnnotation(t, obj)
		g.Expect(value).To(Equal("true"))
		g.Expect(owned).To(BeTrue(), "the annotation belongs to the operator's field manager")
	}, timeout, interval).Should(Succeed())
}

func consistentlyNotAnnotated(t *testing.T, obj client.Object) {
	t.Helper()
	NewWithT(t).Consistently(func(g Gomega) {
		_, present, _ := rewriteAnnotation(t, obj)
		g.Expect(present).To(BeFalse())
	}, 3*time.Second, 250*time.Millisecond).Should(Succeed())
}

// completeDeploymentRollout plays the Deployment and ReplicaSet controllers and the kubelet: it
// replaces the Deployment's pods with one pod made from the current template (through the
// injector double, as the API server's webhook would) and marks the rollout complete.
func completeDeploymentRollout(t *testing.T, d *appsv1.Deployment) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	hash := fmt.Sprintf("h%d", d.Generation)
	pod := replacePods(t, d.Namespace, d.Name, d.Spec.Template, metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "ReplicaSet", Name: d.Name + "-" + hash, UID: "00000000-0000-0000-0000-000000000001", Controller: ptrTo(true),
	}, map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: hash})
	replicas := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: replicas,
		ReadyReplicas: replicas, AvailableReplicas: replicas,
	}
	g.Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
	return pod
}

// startDeploymentRollout marks a rollout of the current generation as begun but unfinished.
func startDeploymentRollout(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1}
	g.Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
}

// replacePods deletes the workload's pods and creates one from template, as the workload's
// controller would, passing it through the injector double.
func replacePods(t *testing.T, ns, app string, template corev1.PodTemplateSpec, owner metav1.OwnerReference, extraLabels map[string]string) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8sClient.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabels{"app": app},
		client.GracePeriodSeconds(0))).To(Succeed())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, GenerateName: owner.Name + "-",
			Labels: map[string]string{}, Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: *template.Spec.DeepCopy(),
	}
	for k, v := range template.Labels {
		pod.Labels[k] = v
	}
	for k, v := range extraLabels {
		pod.Labels[k] = v
	}
	for k, v := range template.Annotations {
		pod.Annotations[k] = v
	}
	_, err := meshdouble.Inject(pod, injector)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	return pod
}

// unhealthyEvent records a kubelet-style Warning Unhealthy event for a pod.
func unhealthyEvent(t *testing.T, pod *corev1.Pod, message string, count int32) *corev1.Event {
	t.Helper()
	now := metav1.Now()
	e := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: pod.Namespace, GenerateName: pod.Name + "."},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, APIVersion: "v1", FieldPath: "spec.containers{" + pod.Spec.Containers[0].Name + "}"},
		Reason:         "Unhealthy", Message: message, Type: corev1.EventTypeWarning, Count: count,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), e)).To(Succeed())
	return e
}

// policyEvents lists the reasons of the Events recorded on a policy.
func policyEvents(g Gomega, p *v1alpha1.ProbeRedirectPolicy) []v1alpha1.EventReason {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(p.Namespace))).To(Succeed())
	var reasons []v1alpha1.EventReason
	for _, e := range list.Items {
		if e.Regarding.Kind == "ProbeRedirectPolicy" && e.Regarding.Name == p.Name {
			reasons = append(reasons, v1alpha1.EventReason(e.Reason))
		}
	}
	return reasons
}

func ptrTo[T any](v T) *T { return &v }

// crdMu serialises the tests that swap the CRD's selector rules.
var crdMu sync.Mutex

// createPolicyStoredBeforeSelectorRules creates a policy whose selector today's CRD rejects, as one
// stored before the selector rules existed: the API server does not revalidate stored objects when
// a CRD is upgraded. It drops spec.selector's validation rules from the CRD, creates the policy,
// and puts the rules back.
func createPolicyStoredBeforeSelectorRules(t *testing.T, ns, name string, matchLabels map[string]string, opts ...policyOption) *v1alpha1.ProbeRedirectPolicy {
	t.Helper()
	crdMu.Lock()
	defer crdMu.Unlock()
	ctx := context.Background()
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	crds, err := client.New(restConfig, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	key := client.ObjectKey{Name: "proberedirectpolicies.mesh.proberedirect.io"}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(crds.Get(ctx, key, crd)).To(Succeed())
	original := crd.DeepCopy()
	selector := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["selector"]
	g.Expect(selector.XValidations).NotTo(BeEmpty())
	selector.XValidations = nil
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["selector"] = selector
	g.Expect(crds.Update(ctx, crd)).To(Succeed())
	defer func() {
		g.Eventually(func(g Gomega) {
			current := &apiextensionsv1.CustomResourceDefinition{}
			g.Expect(crds.Get(ctx, key, current)).To(Succeed())
			current.Spec = original.Spec
			g.Expect(crds.Update(ctx, current)).To(Succeed())
		}, timeout, interval).Should(Succeed())
	}()

	p := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: v1alpha1.FromLabelSelector(&metav1.LabelSelector{MatchLabels: matchLabels})},
	}
	for _, o := range opts {
		o(p)
	}
	// The API server takes a moment to serve the relaxed schema.
	g.Eventually(func() error { return k8sClient.Create(ctx, p.DeepCopy()) }, timeout, interval).Should(Succeed())
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
	return p
}
