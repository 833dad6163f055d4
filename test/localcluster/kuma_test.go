//go:build e2e

package localcluster

// The local control plane with Kuma (the double of Kuma's v2.14.3 injector)
// next to Istio's (the in-process Istio double, so that no bin/istio-injector
// is needed). It starts real processes (`make control-plane-bins`):
//
//	go test -tags e2e ./test/localcluster/ -run TestKumaOnTheLocalControlPlane -count=1 -v

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

const kumaNS = "kuma-shop"

func kumaDeployment(name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "nginx",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/healthz", Port: intstr.FromString("http"),
					}}},
				}}},
			},
		},
	}
}

// kumaPodOf waits for the one pod of Deployment name in namespace and
// returns it once check passes.
func kumaPodOf(t *testing.T, ctx context.Context, cs kubernetes.Interface, namespace, name string, check func(g Gomega, p *corev1.Pod)) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	NewWithT(t).Eventually(func(g Gomega) {
		list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(list.Items).To(HaveLen(1))
		pod = list.Items[0]
		check(g, &pod)
	}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	return &pod
}

func readinessOf(p *corev1.Pod) *corev1.Probe {
	for _, c := range p.Spec.Containers {
		if c.Name == "web" {
			return c.ReadinessProbe
		}
	}
	return nil
}

func TestKumaOnTheLocalControlPlane(t *testing.T) {
	began := time.Now()
	g := NewWithT(t)
	root, err := RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{
		Name:     "kuma-test",
		Dir:      DefaultDir(root, "kuma-test"),
		Nodes:    1,
		Injector: &InjectorOptions{Double: true, Kuma: true},
		Logf:     t.Logf,
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(c.Stop()).To(Succeed()) }()
	t.Logf("cluster with Istio's double and Kuma's double up after %s", time.Since(began).Round(100*time.Millisecond))

	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	g.Expect(err).NotTo(HaveOccurred())
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	g.Expect(err).NotTo(HaveOccurred())

	// A Mesh with builtin mTLS and no mode: STRICT.
	_, err = dyn.Resource(meshdouble.KumaMeshGVR).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": map[string]any{"name": "default"},
		"spec": map[string]any{"mtls": map[string]any{
			"enabledBackend": "ca-1", "backends": []any{map[string]any{"name": "ca-1", "type": "builtin"}},
		}},
	}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	for ns, labels := range map[string]map[string]string{
		kumaNS:       {meshdouble.KumaSidecarInjectionLabel: "enabled"},
		"istio-shop": {"istio-injection": "enabled"},
	} {
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels},
		}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	deploy := func(ns, name string, annotations map[string]string) {
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, kumaDeployment(name, annotations), metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}

	// 1. Kuma's defaults: the probe is rewritten to the probe proxy (9001)
	// and passes under STRICT.
	deploy(kumaNS, "web", nil)
	// The Istio namespace gets Istio's sidecar and not Kuma's.
	deploy("istio-shop", "web", nil)
	p := kumaPodOf(t, ctx, cs, kumaNS, "web", func(g Gomega, p *corev1.Pod) {
		g.Expect(hasContainer(p, meshdouble.KumaSidecarName)).To(BeTrue(), "kuma-sidecar injected")
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.KumaProbeProxyPortAnnotation, "9001"))
		g.Expect(readinessOf(p).HTTPGet).To(Equal(&corev1.HTTPGetAction{
			Path: "/8080/healthz", Port: intstr.FromInt32(9001), Scheme: corev1.URISchemeHTTP,
		}))
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.VerdictAnnotation, "pass"))
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.VerdictSourceAnnotation, "kuma"))
		g.Expect(podReady(p)).To(BeTrue())
	})
	t.Logf("kuma pod %s Ready with %s after %s", p.Name, readinessOf(p).HTTPGet.Path, time.Since(began).Round(100*time.Millisecond))
	kumaPodOf(t, ctx, cs, "istio-shop", "web", func(g Gomega, p *corev1.Pod) {
		g.Expect(hasContainer(p, "istio-proxy")).To(BeTrue())
		g.Expect(hasContainer(p, meshdouble.KumaSidecarName)).To(BeFalse())
	})

	// 2. The pod turns the probe proxy off ("0") and asks for no virtual
	// probes: Kuma v2.14.3 still falls back to virtual probes (probe.go
	// SetVirtualProbesEnabledAnnotation), on 9000, which pass under STRICT.
	deploy(kumaNS, "web-vp", map[string]string{
		meshdouble.KumaProbeProxyPortAnnotation: "0", meshdouble.KumaVirtualProbesAnnotation: "disabled",
	})
	kumaPodOf(t, ctx, cs, kumaNS, "web-vp", func(g Gomega, p *corev1.Pod) {
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.KumaVirtualProbesAnnotation, "enabled"))
		g.Expect(readinessOf(p).HTTPGet.Port).To(Equal(intstr.FromInt32(9000)))
		g.Expect(readinessOf(p).HTTPGet.Path).To(Equal("/8080/healthz"))
		g.Expect(podReady(p)).To(BeTrue())
	})

	// 3. Kuma configured with the probe proxy and virtual probes off: the
	// probe stays on the app port, Envoy captures it, STRICT resets it; the
	// pod runs and never gets Ready.
	off := meshdouble.DefaultKumaOptions()
	off.ProbeProxyPort, off.VirtualProbesEnabled = 0, false
	g.Expect(c.SetKumaOptions(off)).To(Succeed())
	deploy(kumaNS, "web-plain", nil)
	p = kumaPodOf(t, ctx, cs, kumaNS, "web-plain", func(g Gomega, p *corev1.Pod) {
		g.Expect(hasContainer(p, meshdouble.KumaSidecarName)).To(BeTrue())
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.KumaProbeProxyPortAnnotation, "0"))
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.KumaVirtualProbesAnnotation, "disabled"))
		g.Expect(readinessOf(p).HTTPGet.Port).To(Equal(intstr.FromString("http")))
		g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.VerdictAnnotation, "reset"))
		g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
	})
	NewWithT(t).Consistently(func(g Gomega) {
		got, err := cs.CoreV1().Pods(kumaNS).Get(ctx, p.Name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(podReady(got)).To(BeFalse(), "unredirected HTTP probe under STRICT")
	}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

	// 4. Without a Mesh, Kuma refuses the pods.
	g.Expect(dyn.Resource(meshdouble.KumaMeshGVR).Delete(ctx, "default", metav1.DeleteOptions{})).To(Succeed())
	_, err = cs.CoreV1().Pods(kumaNS).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
	}, metav1.CreateOptions{})
	g.Expect(err).To(MatchError(ContainSubstring(`meshes.kuma.io "default" not found`)))

	// 5. Kuma's CRDs can go and come back.
	g.Expect(c.RemoveKumaCRDs(ctx)).To(Succeed())
	g.Expect(c.InstallKumaCRDs(ctx)).To(Succeed())
	t.Logf("done after %s", time.Since(began).Round(100*time.Millisecond))
}
