//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

const interval = 250 * time.Millisecond

func newNamespace(t *testing.T, cl client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: map[string]string{"istio-injection": "enabled"}}}
	NewWithT(t).Expect(cl.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

func strictPeerAuthentication(t *testing.T, cl client.Client, ns string) {
	t.Helper()
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	NewWithT(t).Expect(cl.Create(context.Background(), pa)).To(Succeed())
}

// The fields a user wrote on every Deployment the tests create; none may be lost.
var (
	userLabels              = map[string]string{"team": "chaos"}
	userAnnotations         = map[string]string{"owner.example/contact": "ops@example.com"}
	userTemplateLabels      = map[string]string{"tier": "web"}
	userTemplateAnnotations = map[string]string{"note.example/keep": "yes"}
)

// nginx is a Deployment with Alibaba ASM's example readiness probe (broken under STRICT until
// redirected) and the user fields above, selected by app=chaos.
func nginx(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "chaos", "name": name}
	template := map[string]string{"app": "chaos", "name": name}
	for k, v := range userTemplateLabels {
		template[k] = v
	}
	annotations := map[string]string{}
	for k, v := range userTemplateAnnotations {
		annotations[k] = v
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: template, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
					ReadinessProbe: &corev1.Probe{PeriodSeconds: 5, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/index.html", Port: intstr.FromInt32(80),
					}}},
				}}},
			},
		},
	}
	for k, v := range userLabels {
		d.Labels[k] = v
	}
	for k, v := range userAnnotations {
		d.Annotations[k] = v
	}
	return d
}

// createDeployments creates n one-replica nginx Deployments web-000, web-001, ... in ns.
func createDeployments(t *testing.T, cl client.Client, ns string, n int) {
	t.Helper()
	for i := range n {
		NewWithT(t).Expect(cl.Create(context.Background(), nginx(ns, fmt.Sprintf("web-%03d", i), 1))).To(Succeed())
	}
}

func policy(ns string, maxConcurrent int32) *v1alpha1.ProbeRedirectPolicy {
	p := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chaos"},
		Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: v1alpha1.FromLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "chaos"}})},
	}
	p.Spec.Rollout.MaxConcurrent = maxConcurrent
	return p
}

// annotated reports whether the operator's annotation is on d's template.
func annotated(d *appsv1.Deployment) bool {
	return d.Spec.Template.Annotations[istiomesh.RewriteAnnotation] == "true"
}

// rolledOut applies kubectl rollout status's rules to d.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= want &&
		d.Status.Replicas <= d.Status.UpdatedReplicas && d.Status.AvailableReplicas >= d.Status.UpdatedReplicas
}

// inFlight counts the Deployments the operator has annotated whose rollout has not finished.
func inFlight(ds []appsv1.Deployment) int {
	n := 0
	for i := range ds {
		if annotated(&ds[i]) && !rolledOut(&ds[i]) {
			n++
		}
	}
	return n
}

func listDeployments(ctx context.Context, cl client.Client, ns string) ([]appsv1.Deployment, error) {
	var list appsv1.DeploymentList
	err := cl.List(ctx, &list, client.InNamespace(ns))
	return list.Items, err
}

// checkConverged waits until every Deployment of ns is annotated and rolled out and the policy
// is Ready, then checks that each template changed exactly once (generation 2, at most two
// ReplicaSets)
// and that every user field is still there. It returns how long convergence took from since.
func checkConverged(t *testing.T, cl client.Client, ns string, n int, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Eventually(func(g Gomega) {
		ds, err := listDeployments(ctx, cl, ns)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ds).To(HaveLen(n))
		for i := range ds {
			g.Expect(annotated(&ds[i]) && rolledOut(&ds[i])).To(BeTrue(), "%s not annotated and rolled out", ds[i].Name)
		}
		p := &v1alpha1.ProbeRedirectPolicy{}
		g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "chaos"}, p)).To(Succeed())
		g.Expect(p.Status.Summary.RolledOutWorkloads).To(Equal(int32(n)))
	}, timeout, interval).Should(Succeed())
	took := time.Since(since)

	ds, err := listDeployments(ctx, cl, ns)
	g.Expect(err).NotTo(HaveOccurred())
	var sets appsv1.ReplicaSetList
	g.Expect(cl.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
	perOwner := map[string]int{}
	for _, rs := range sets.Items {
		for _, o := range rs.OwnerReferences {
			perOwner[o.Name]++
		}
	}
	for i := range ds {
		d := &ds[i]
		g.Expect(d.Generation).To(Equal(int64(2)), "%s: the template changed more than once", d.Name)
		// Two ReplicaSets, or one when the operator annotated the Deployment before
		// kube-controller-manager had made its first: either way one template change.
		g.Expect(perOwner[d.Name]).To(BeNumerically("<=", 2), "%s: ReplicaSets", d.Name)
		for k, v := range userLabels {
			g.Expect(d.Labels).To(HaveKeyWithValue(k, v), d.Name)
		}
		for k, v := range userAnnotations {
			g.Expect(d.Annotations).To(HaveKeyWithValue(k, v), d.Name)
		}
		for k, v := range userTemplateLabels {
			g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(k, v), d.Name)
		}
		for k, v := range userTemplateAnnotations {
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(k, v), d.Name)
		}
	}
	return took
}
