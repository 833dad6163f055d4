//go:build e2e

package localcluster

// End-to-end test of the local control plane with the mesh double. It starts
// real processes (bin/etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok: `make control-plane-bins`), so it only builds with
// the e2e tag:
//
//	go test -tags e2e ./test/localcluster/ -count=1 -v -timeout 20m

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

const (
	e2eNamespace = "shop"
	e2eApp       = "web"
	e2eReplicas  = 2
)

func TestTwoClustersWithIstiosInjectorAndTheDouble(t *testing.T) {
	testBegan := time.Now()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"e2e-a", "e2e-b"}
	clusters := make([]*Cluster, len(names))
	startErrs := make([]error, len(names))
	startTook := make([]time.Duration, len(names))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// Start both clusters side by side.
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			clusters[i], startErrs[i] = Start(ctx, Options{
				Name: name,
				Dir:  DefaultDir(root, name),
				// The first runs Istio's own injector, the second the in-process double.
				Injector: &InjectorOptions{RewriteAppHTTPProbe: false, Double: i == 1},
				Logf: func(format string, args ...any) {
					t.Logf("[%s] "+format, append([]any{name}, args...)...)
				},
			})
			startTook[i] = time.Since(began)
		}()
	}
	wg.Wait()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			for _, c := range clusters {
				if c != nil {
					_ = c.Stop()
				}
			}
		}
	})
	for i, err := range startErrs {
		if err != nil {
			t.Fatalf("starting %s: %v", names[i], err)
		}
		t.Logf("TIMING: cluster %s started in %s (in parallel with the other)", names[i], startTook[i].Round(100*time.Millisecond))
	}

	t.Run("side by side", func(t *testing.T) {
		g := NewWithT(t)
		a, b := clusters[0], clusters[1]
		g.Expect(a.Ports).NotTo(Equal(b.Ports))
		g.Expect(a.APIServerURL).NotTo(Equal(b.APIServerURL))
		for i, c := range clusters {
			g.Expect(c.Kubeconfig).To(BeARegularFile())
			st, err := ReadState(c.Dir)
			g.Expect(err).NotTo(HaveOccurred())
			if i == 0 {
				g.Expect(st.PIDs).To(HaveLen(6), "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, istio-injector")
			} else {
				g.Expect(st.PIDs).To(HaveLen(5), "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok; the double runs in this process")
			}
			for name, pid := range c.PIDs() {
				g.Expect(filepath.Join(c.Dir, "pids", name+".pid")).To(BeARegularFile())
				g.Expect(ProcessAlive(pid, c.Dir+"/")).To(BeTrue(), name)
				g.Expect(filepath.Join(c.Dir, "logs", name+".log")).To(BeARegularFile())
			}
		}
		// A second cluster in the same folder is refused while one runs.
		_, err := Start(ctx, Options{Name: "again", Dir: a.Dir})
		g.Expect(err).To(MatchError(ContainSubstring("already running in " + a.Dir)))
	})

	t.Run("scenario", func(t *testing.T) {
		for i, c := range clusters {
			t.Run(names[i], func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				rewriteScenario(t, c)
				t.Logf("TIMING: reset -> rewrite scenario on %s took %s", c.Name, time.Since(began).Round(100*time.Millisecond))
				if i == 1 {
					otherVerdicts(t, c)
				}
			})
		}
	})

	// Stop both and check that nothing is left.
	pids := map[string]int{}
	for _, c := range clusters {
		for name, pid := range c.PIDs() {
			pids[c.Name+"/"+name] = pid
		}
	}
	stopBegan := time.Now()
	var stopErrs [2]error
	for i, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopErrs[i] = c.Stop()
		}()
	}
	wg.Wait()
	stopped = true
	t.Logf("TIMING: both clusters stopped in %s", time.Since(stopBegan).Round(100*time.Millisecond))
	g := NewWithT(t)
	for _, err := range stopErrs {
		g.Expect(err).NotTo(HaveOccurred())
	}
	for name, pid := range pids {
		g.Expect(syscall.Kill(pid, 0)).To(MatchError(syscall.ESRCH), "%s (pid %d) is still alive", name, pid)
		g.Expect(syscall.Kill(-pid, 0)).To(MatchError(syscall.ESRCH), "process group of %s (%d) still has members", name, pid)
	}
	for _, c := range clusters {
		g.Expect(c.Alive()).To(BeEmpty())
		files, _ := filepath.Glob(filepath.Join(c.Dir, "pids", "*.pid"))
		g.Expect(files).To(BeEmpty())
		g.Expect(filepath.Join(c.Dir, stateFile)).NotTo(BeAnExistingFile())
		g.Expect(c.Stop()).To(Succeed(), "Stop is idempotent")
	}
	t.Logf("TIMING: whole test %s", time.Since(testBegan).Round(100*time.Millisecond))
}

// clients returns a typed clientset and a controller-runtime client that
// knows PeerAuthentication.
func clients(t *testing.T, c *Cluster) (kubernetes.Interface, client.Client) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.RESTConfig, client.Options{Scheme: istioScheme})
	if err != nil {
		t.Fatal(err)
	}
	return cs, cl
}

func meshNamespace(t *testing.T, ctx context.Context, cs kubernetes.Interface, name string) {
	t.Helper()
	g := NewWithT(t)
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"istio-injection": "enabled"},
	}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	// Pods are refused until the service account controller has made "default".
	g.Eventually(func() error {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	}).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).Should(Succeed())
}

func strictPA(t *testing.T, ctx context.Context, cl client.Client, namespace string) {
	t.Helper()
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "default"}}
	pa.Spec.Mtls = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_STRICT}
	if err := cl.Create(ctx, pa); err != nil {
		t.Fatal(err)
	}
}

func nginxDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": e2eApp}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: e2eNamespace, Name: e2eApp},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(e2eReplicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "nginx",
					Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/index.html", Port: intstr.FromInt32(80),
						}},
						PeriodSeconds: 10,
					},
				}}},
			},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasContainer(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func unhealthyEvents(ctx context.Context, cs kubernetes.Interface, namespace, pod string) ([]corev1.Event, error) {
	list, err := cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + pod + ",reason=Unhealthy,type=Warning",
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func appPods(ctx context.Context, cs kubernetes.Interface) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods(e2eNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + e2eApp})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// rewriteScenario: under STRICT mTLS without the rewrite the pods' probes are
// reset and they never get Ready; with the rewrite annotation on the pod
// template, the new pods pass and the rollout completes.
func rewriteScenario(t *testing.T, c *Cluster) {
	g := NewWithT(t)
	ctx := context.Background()
	cs, cl := clients(t, c)
	meshNamespace(t, ctx, cs, e2eNamespace)
	strictPA(t, ctx, cl, e2eNamespace)
	deploy, err := cs.AppsV1().Deployments(e2eNamespace).Create(ctx, nginxDeployment(), metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	// Pods created by the real ReplicaSet controller, scheduled by the real
	// scheduler onto kwok nodes, injected by the double, verdict reset,
	// Running and not Ready.
	var first corev1.Pod
	g.Eventually(func(g Gomega) {
		pods, err := appPods(ctx, cs)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pods).To(HaveLen(e2eReplicas))
		for _, p := range pods {
			g.Expect(p.OwnerReferences).To(ContainElement(And(
				HaveField("Kind", "ReplicaSet"), HaveField("Controller", HaveValue(BeTrue())))))
			g.Expect(p.Spec.NodeName).To(HavePrefix("kwok-node-"))
			g.Expect(hasContainer(&p, istiomesh.ProxyContainerName)).To(BeTrue(), "istio-proxy injected")
			g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.VerdictAnnotation, "reset"))
			g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(p.Status.PodIP).NotTo(BeEmpty())
			g.Expect(podReady(&p)).To(BeFalse())
		}
		first = pods[0]
	}).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	rs, err := cs.AppsV1().ReplicaSets(e2eNamespace).Get(ctx, first.OwnerReferences[0].Name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(metav1.GetControllerOf(rs).UID).To(Equal(deploy.UID))
	oldHash := first.Labels[appsv1.DefaultDeploymentUniqueLabelKey]

	// kubelet (kwok) reports the reset, again and again.
	g.Eventually(func(g Gomega) {
		evs, err := unhealthyEvents(ctx, cs, e2eNamespace, first.Name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(evs).NotTo(BeEmpty())
		g.Expect(evs[0].Message).To(ContainSubstring("connection reset by peer"))
		g.Expect(evs[0].Message).To(HavePrefix("Readiness probe failed: "))
		g.Expect(evs[0].Count).To(BeNumerically(">=", 2), "the event repeats")
	}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
	g.Consistently(func(g Gomega) {
		p, err := cs.CoreV1().Pods(e2eNamespace).Get(ctx, first.Name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(podReady(p)).To(BeFalse())
	}).WithTimeout(2 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	d, err := cs.AppsV1().Deployments(e2eNamespace).Get(ctx, e2eApp, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.Status.AvailableReplicas).To(BeZero())

	// The fix: the rewrite annotation on the pod template.
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:"true"}}}}}`, istiomesh.RewriteAnnotation)
	_, err = cs.AppsV1().Deployments(e2eNamespace).Patch(ctx, e2eApp, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	rolloutBegan := time.Now()

	g.Eventually(func(g Gomega) {
		d, err := cs.AppsV1().Deployments(e2eNamespace).Get(ctx, e2eApp, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.Status.ObservedGeneration).To(BeNumerically(">=", d.Generation))
		g.Expect(d.Status.UpdatedReplicas).To(BeEquivalentTo(e2eReplicas))
		g.Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(e2eReplicas))
		g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(e2eReplicas))
		g.Expect(d.Status.Replicas).To(BeEquivalentTo(e2eReplicas), "old pods gone")
		g.Expect(d.Status.Conditions).To(ContainElement(And(
			HaveField("Type", appsv1.DeploymentProgressing),
			HaveField("Reason", "NewReplicaSetAvailable"))))

		pods, err := appPods(ctx, cs)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pods).To(HaveLen(e2eReplicas))
		for _, p := range pods {
			g.Expect(p.DeletionTimestamp).To(BeNil())
			g.Expect(p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]).NotTo(Equal(oldHash), "a new ReplicaSet")
			g.Expect(p.Annotations).To(HaveKeyWithValue(istiomesh.RewriteAnnotation, "true"))
			g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.VerdictAnnotation, "pass"))
			g.Expect(hasContainer(&p, istiomesh.ProxyContainerName)).To(BeTrue())
			probe := p.Spec.Containers[0].ReadinessProbe
			g.Expect(probe.HTTPGet.Port).To(Equal(intstr.FromInt32(15020)))
			g.Expect(probe.HTTPGet.Path).To(Equal("/app-health/nginx/readyz"))
			g.Expect(podReady(&p)).To(BeTrue())
		}
	}).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	t.Logf("TIMING: rollout on %s completed %s after the patch", c.Name, time.Since(rolloutBegan).Round(100*time.Millisecond))
}

// otherVerdicts checks the status500 and never-ready stages on bare pods.
func otherVerdicts(t *testing.T, c *Cluster) {
	g := NewWithT(t)
	ctx := context.Background()
	cs, _ := clients(t, c)
	const ns = "verdicts"
	meshNamespace(t, ctx, cs, ns)

	tcp := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, Annotations: map[string]string{istiomesh.RewriteAnnotation: "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "db", Image: "postgres:17",
			Ports: []corev1.ContainerPort{{ContainerPort: 5432}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5433)}, // wrong port
			}},
		}}},
	}
	never := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "slow", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/never-ready:1"}}},
	}
	for _, p := range []*corev1.Pod{tcp, never} {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	for _, tc := range []struct{ pod, verdict string }{{"db", "status500"}, {"slow", "never-ready"}} {
		g.Eventually(func(g Gomega) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, tc.pod, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Annotations).To(HaveKeyWithValue(meshdouble.VerdictAnnotation, tc.verdict))
			g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(podReady(p)).To(BeFalse())
		}).WithTimeout(time.Minute).WithPolling(250*time.Millisecond).Should(Succeed(), tc.pod)
	}
	g.Eventually(func(g Gomega) {
		evs, err := unhealthyEvents(ctx, cs, ns, "db")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(evs).NotTo(BeEmpty())
		g.Expect(evs[0].Message).To(Equal("Readiness probe failed: HTTP probe failed with statuscode: 500"))
	}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
	evs, err := unhealthyEvents(ctx, cs, ns, "slow")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(evs).To(BeEmpty(), "never-ready emits no probe event")

	// Deleting pods works (kwok's stock pod-delete stage).
	g.Expect(cs.CoreV1().Pods(ns).Delete(ctx, "db", metav1.DeleteOptions{})).To(Succeed())
	g.Eventually(func() bool {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, "db", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(time.Minute).WithPolling(250 * time.Millisecond).Should(BeTrue())
}
