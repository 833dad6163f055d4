//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
)

// The Kuma scenarios run on the same cluster as Istio's, with the double of Kuma's v2.14.3
// injector (proven against Kuma's golden files) configured by kumaConfig. Meshes are
// cluster-scoped, so each scenario makes its own Mesh and points its namespace at it.

// kumaMesh creates a Kuma Mesh named name with a builtin mTLS backend in mode ("STRICT" or
// "PERMISSIVE"), and deletes it when the test ends.
func kumaMesh(t *testing.T, name, mode string) {
	t.Helper()
	m := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"mtls": map[string]any{
			"enabledBackend": "ca-1",
			"backends":       []any{map[string]any{"name": "ca-1", "type": "builtin", "mode": mode}},
		}},
	}}
	NewWithT(t).Expect(k8s.Create(context.Background(), m)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), m) })
}

// kumaNamespace creates a namespace whose pods Kuma injects into the Mesh mesh.
func kumaNamespace(t *testing.T, prefix, mesh string) string {
	t.Helper()
	labels := map[string]string{kumamesh.SidecarInjectionLabel: "enabled", kumamesh.MeshLabel: mesh}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels}}
	NewWithT(t).Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

// kumaAnnotation reads a workload's kuma.io/application-probe-proxy-port from the API server.
func kumaAnnotation(g Gomega, d *appsv1.Deployment) (string, bool) {
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(d), d)).To(Succeed())
	v, ok := d.Spec.Template.Annotations[kumamesh.ProbeProxyPortAnnotation]
	return v, ok
}

// containerOf returns the pod's container called name, or nil.
func containerOf(pod corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// Kuma scenario 1: an HTTP readiness probe under a STRICT Mesh is reset until the policy turns
// Kuma's application probe proxy on for the workload.
func TestKumaScenario1HTTPProbeUnderStrictMesh(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	kumaMesh(t, "k1-strict", "STRICT")
	ns := kumaNamespace(t, "k1-strict-http", "k1-strict")
	d := deployment(ns, "nginx", 2, nginxContainer(), nil)
	create(t, d)
	g.Eventually(func(g Gomega) {
		g.Expect(unhealthyMessages(g, ns)).To(ContainElement(ContainSubstring("connection reset by peer")))
	}, timeout, interval).Should(Succeed())
	g.Expect(podsOf(g, ns, "nginx")).To(HaveEach(Satisfy(func(p corev1.Pod) bool { return !podReady(p) })))

	p := policy(ns, "nginx", labelsFor("nginx"))
	create(t, p)
	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue)(g, p)
		conditionIs(v1alpha1.ConditionProbesHealthy, metav1.ConditionTrue)(g, p)
		g.Expect(p.Status.Summary.RewrittenProbes).To(Equal(int32(1)))
	})
	g.Expect(got.Status.Mesh).To(Equal("Kuma"))
	g.Expect(got.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
	w := workloadStatus(got, v1alpha1.KindDeployment, "nginx")
	g.Expect(w.Mesh).To(Equal(v1alpha1.MeshKuma))
	g.Expect(w.State).To(Equal(v1alpha1.WorkloadRedirected))
	g.Expect(w.Probes[0].State).To(Equal(v1alpha1.ProbeRewritten))
	g.Expect(w.Probes[0].Original).To(Equal("HTTP :80/index.html"))
	g.Expect(w.Probes[0].Rewritten).To(Equal("HTTP :9001/80/index.html"))
	value, _ := kumaAnnotation(g, d)
	g.Expect(value).To(Equal("9001"))

	pods := podsOf(g, ns, "nginx")
	g.Expect(pods).To(HaveLen(2))
	for _, pod := range pods {
		g.Expect(podReady(pod)).To(BeTrue(), pod.Name)
		g.Expect(containerOf(pod, kumamesh.ProxyContainerName)).NotTo(BeNil(), pod.Name)
		probe := containerOf(pod, "nginx").ReadinessProbe.HTTPGet
		g.Expect(probe.Port.IntValue()).To(Equal(9001), pod.Name)
		g.Expect(probe.Path).To(Equal("/80/index.html"), pod.Name)
		g.Expect(probe.HTTPHeaders).To(ContainElement(corev1.HTTPHeader{Name: "Custom-Header", Value: "Awesome"}), pod.Name)
	}
}

// Kuma scenario 2: a TCP probe on a port nothing listens on passes behind kuma-sidecar; once
// redirected, kuma-dp's dial fails and the policy reports the Unhealthy pods.
func TestKumaScenario2TCPFalsePositiveExposed(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	kumaMesh(t, "k2-permissive", "PERMISSIVE")
	ns := kumaNamespace(t, "k2-tcp", "k2-permissive")
	d := deployment(ns, "tcp-app", 1, tcpContainer("registry.example/app:1", 2940), nil)
	create(t, d)
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		g.Expect(d.Status.AvailableReplicas).To(Equal(int32(1)), "kuma-sidecar makes the TCP probe pass")
	}, timeout, interval).Should(Succeed())

	p := policy(ns, "tcp", labelsFor("tcp-app"))
	create(t, p)
	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionProbesHealthy, metav1.ConditionFalse)(g, p)
		g.Expect(p.Status.UnhealthyPods).NotTo(BeEmpty())
		g.Expect(p.Status.UnhealthyPods[0].LastMessage).To(ContainSubstring("HTTP probe failed with statuscode: 503"))
	})
	g.Expect(got.Status.Mesh).To(Equal("Kuma"))
	g.Expect(got.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
	g.Expect(workloadStatus(got, v1alpha1.KindDeployment, "tcp-app").Probes[0].Rewritten).To(Equal("HTTP :9001/tcp/2940"))
	value, _ := kumaAnnotation(g, d)
	g.Expect(value).To(Equal("9001"))
	// The redirected pod tells the truth: it is not Ready.
	g.Expect(podsOf(g, ns, "tcp-app")).To(ContainElement(Satisfy(func(p corev1.Pod) bool {
		c := containerOf(p, "app")
		return c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path == "/tcp/2940" && !podReady(p)
	})))
}

// Kuma scenario 3: HTTP probes under a PERMISSIVE Mesh reach the app; the policy leaves them.
func TestKumaScenario3PermissiveMeshLeftAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	kumaMesh(t, "k3-permissive", "PERMISSIVE")
	ns := kumaNamespace(t, "k3-permissive", "k3-permissive")
	d := deployment(ns, "nginx", 1, nginxContainer(), nil)
	create(t, d)
	p := policy(ns, "nginx", labelsFor("nginx"))
	create(t, p)
	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue)(g, p)
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "nginx").State).To(Equal(v1alpha1.WorkloadNotNeeded))
	})
	g.Expect(got.Status.Mesh).To(Equal("Kuma"))
	g.Expect(got.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
	g.Expect(workloadStatus(got, v1alpha1.KindDeployment, "nginx").Probes[0].Reason).To(Equal(v1alpha1.StatusReasonPortNotStrict))
	g.Consistently(func(g Gomega) {
		_, present := kumaAnnotation(g, d)
		g.Expect(present).To(BeFalse())
		g.Expect(podsOf(g, ns, "nginx")).To(HaveEach(Satisfy(podReady)))
	}, 5*time.Second, interval).Should(Succeed())
}

// Kuma scenario 4: a person's kuma.io/application-probe-proxy-port: "0" is left as it is, under a
// STRICT Mesh. (Kuma 2.14 then falls back to virtual probes, which carry HTTP probes on 9000.)
func TestKumaScenario4UserZeroLeftAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	kumaMesh(t, "k4-strict", "STRICT")
	ns := kumaNamespace(t, "k4-user-zero", "k4-strict")
	d := deployment(ns, "nginx", 1, nginxContainer(), map[string]string{kumamesh.ProbeProxyPortAnnotation: "0"})
	create(t, d)
	p := policy(ns, "nginx", labelsFor("nginx"))
	create(t, p)
	eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		w := workloadStatus(p, v1alpha1.KindDeployment, "nginx")
		g.Expect(w.State).To(Equal(v1alpha1.WorkloadOptedOut))
		g.Expect(w.Message).To(ContainSubstring(kumamesh.ProbeProxyPortAnnotation))
	})
	g.Consistently(func(g Gomega) {
		value, _ := kumaAnnotation(g, d)
		g.Expect(value).To(Equal("0"))
		g.Expect(d.Generation).To(Equal(int64(1)), "the template was never changed")
	}, 5*time.Second, interval).Should(Succeed())
}

// Kuma scenario 5: in a PERMISSIVE Mesh, a MeshTLS policy makes one workload STRICT; only that
// workload is redirected.
func TestKumaScenario5MeshTLSMakesOneWorkloadStrict(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	kumaMesh(t, "k5-permissive", "PERMISSIVE")
	ns := kumaNamespace(t, "k5-meshtls", "k5-permissive")
	meshTLS := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "MeshTLS",
		"metadata": map[string]any{"name": "api-strict", "namespace": ns, "labels": map[string]any{kumamesh.MeshLabel: "k5-permissive"}},
		"spec": map[string]any{
			"targetRef": map[string]any{"kind": "Dataplane", "labels": map[string]any{"app": "api"}},
			"from":      []any{map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"mode": "Strict"}}},
		},
	}}
	g.Expect(k8s.Create(context.Background(), meshTLS)).To(Succeed())
	api := deployment(ns, "api", 1, nginxContainer(), nil)
	web := deployment(ns, "web", 1, nginxContainer(), nil)
	create(t, api, web)
	p := policy(ns, "all", map[string]string{}, func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = 2 })
	create(t, p)
	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue)(g, p)
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "api").State).To(Equal(v1alpha1.WorkloadRedirected))
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "web").State).To(Equal(v1alpha1.WorkloadNotNeeded))
	})
	g.Expect(got.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive), "the namespace follows the Mesh")
	g.Expect(workloadStatus(got, v1alpha1.KindDeployment, "api").MTLSMode).To(Equal(v1alpha1.MTLSStrict))
	g.Expect(workloadStatus(got, v1alpha1.KindDeployment, "web").MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
	value, _ := kumaAnnotation(g, api)
	g.Expect(value).To(Equal("9001"))
	_, present := kumaAnnotation(g, web)
	g.Expect(present).To(BeFalse())
	g.Expect(podsOf(g, ns, "api")).To(HaveEach(Satisfy(podReady)))
}

// TestKubectlGetShowsEachPolicysMesh runs `kubectl get prp -A` on the cluster with both meshes and
// reads the Mesh and MTLS columns of an Istio policy and a Kuma policy.
func TestKubectlGetShowsEachPolicysMesh(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	istioNS := newNamespace(t, "both-istio")
	peerAuthentication(t, istioNS, strict)
	kumaMesh(t, "both-kuma", "STRICT")
	kumaNS := kumaNamespace(t, "both-kuma", "both-kuma")
	istioPolicy, kumaPolicy := policy(istioNS, "istio-nginx", labelsFor("nginx")), policy(kumaNS, "kuma-nginx", labelsFor("nginx"))
	create(t, deployment(istioNS, "nginx", 1, nginxContainer(), nil), istioPolicy,
		deployment(kumaNS, "nginx", 1, nginxContainer(), nil), kumaPolicy)
	for _, p := range []*v1alpha1.ProbeRedirectPolicy{istioPolicy, kumaPolicy} {
		eventually(t, p, conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue))
	}
	out, err := kubectl(t, "get", "prp", "-A")
	g.Expect(err).NotTo(HaveOccurred(), out)
	t.Logf("kubectl get prp -A:\n%s", out)
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 {
			rows[fields[0]+"/"+fields[1]] = fields
		}
	}
	g.Expect(rows["NAMESPACE/NAME"][:4]).To(Equal([]string{"NAMESPACE", "NAME", "MESH", "MTLS"}))
	g.Expect(rows[istioNS+"/istio-nginx"][2:4]).To(Equal([]string{"Istio", "STRICT"}))
	g.Expect(rows[kumaNS+"/kuma-nginx"][2:4]).To(Equal([]string{"Kuma", "STRICT"}))
}
