//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

const (
	timeout  = 3 * time.Minute
	interval = 250 * time.Millisecond
)

// newNamespace creates a namespace for one scenario, with sidecar injection on.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	labels := map[string]string{"istio-injection": "enabled"}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels}}
	NewWithT(t).Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

func peerAuthentication(t *testing.T, ns string, mode securityapi.PeerAuthentication_MutualTLS_Mode) *securityv1.PeerAuthentication {
	t.Helper()
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	NewWithT(t).Expect(k8s.Create(context.Background(), pa)).To(Succeed())
	return pa
}

// nginxContainer is Alibaba ASM's example: /index.html on port 80 with a custom header.
func nginxContainer() corev1.Container {
	return corev1.Container{
		Name: "nginx", Image: "nginx:1.27",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
		ReadinessProbe: &corev1.Probe{PeriodSeconds: 5, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/index.html", Port: intstr.FromInt(80),
			HTTPHeaders: []corev1.HTTPHeader{{Name: "Custom-Header", Value: "Awesome"}},
		}}},
	}
}

// tcpContainer is a container named "app" with a TCP readiness probe on port.
func tcpContainer(image string, port int) corev1.Container {
	return corev1.Container{
		Name: "app", Image: image,
		ReadinessProbe: &corev1.Probe{PeriodSeconds: 5, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}},
	}
}

func labelsFor(app string) map[string]string { return map[string]string{"app": app} }

func deployment(ns, name string, replicas int32, c corev1.Container, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labelsFor(name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labelsFor(name), Annotations: annotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
			},
		},
	}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		NewWithT(t).Expect(k8s.Create(context.Background(), obj)).To(Succeed(), "%T %s", obj, obj.GetName())
	}
}

func policy(ns, name string, selector map[string]string, mutate ...func(*v1alpha1.ProbeRedirectPolicy)) *v1alpha1.ProbeRedirectPolicy {
	p := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: v1alpha1.FromLabelSelector(&metav1.LabelSelector{MatchLabels: selector})},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// eventually retries check against the live policy until it passes.
func eventually(t *testing.T, p *v1alpha1.ProbeRedirectPolicy, check func(g Gomega, p *v1alpha1.ProbeRedirectPolicy)) *v1alpha1.ProbeRedirectPolicy {
	t.Helper()
	got := &v1alpha1.ProbeRedirectPolicy{}
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(p), got)).To(Succeed())
		check(g, got)
	}, timeout, interval).Should(Succeed())
	return got
}

func conditionIs(kind v1alpha1.ConditionType, status metav1.ConditionStatus) func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
	return func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		c := meta.FindStatusCondition(p.Status.Conditions, string(kind))
		g.Expect(c).NotTo(BeNil(), "%s missing", kind)
		g.Expect(c.Status).To(Equal(status), "%s: %s %s", kind, c.Reason, c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(p.Generation))
	}
}

func workloadStatus(p *v1alpha1.ProbeRedirectPolicy, kind v1alpha1.WorkloadKind, name string) v1alpha1.WorkloadStatus {
	for _, w := range p.Status.Workloads {
		if w.Kind == kind && w.Name == name {
			return w
		}
	}
	return v1alpha1.WorkloadStatus{State: "Absent"}
}

// templateRewrite reads a workload's rewrite annotation from the API server.
func templateRewrite(g Gomega, obj client.Object) (string, bool) {
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	var annotations map[string]string
	switch o := obj.(type) {
	case *appsv1.Deployment:
		annotations = o.Spec.Template.Annotations
	case *appsv1.StatefulSet:
		annotations = o.Spec.Template.Annotations
	case *appsv1.DaemonSet:
		annotations = o.Spec.Template.Annotations
	}
	v, ok := annotations[istiomesh.RewriteAnnotation]
	return v, ok
}

// unhealthyMessages returns the messages of the kubelet (kwok) Unhealthy events in ns.
func unhealthyMessages(g Gomega, ns string) []string {
	list := &corev1.EventList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Reason == "Unhealthy" && e.Type == corev1.EventTypeWarning {
			out = append(out, e.Message)
		}
	}
	return out
}

// podsOf lists the live (not terminating) pods of an app.
func podsOf(g Gomega, ns, app string) []corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels(labelsFor(app)))).To(Succeed())
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubectl runs bin/kubectl against the local cluster.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
