//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

const strict = securityapi.PeerAuthentication_MutualTLS_STRICT

// Scenario 1: Alibaba ASM's nginx HTTP readiness probe under STRICT mTLS.
func TestScenario1HTTPProbeUnderStrictMTLS(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, "s1-strict-http")
	peerAuthentication(t, ns, strict)
	d := deployment(ns, "nginx", 2, nginxContainer(), nil)
	create(t, d)

	// Before: the kubelet's probe is reset by the sidecar, and the pods never become Ready.
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
	g.Expect(got.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
	probe := workloadStatus(got, v1alpha1.KindDeployment, "nginx").Probes[0]
	g.Expect(probe.State).To(Equal(v1alpha1.ProbeRewritten))
	g.Expect(probe.Rewritten).To(Equal("HTTP :15020/app-health/nginx/readyz"))

	// The new pods probe the agent, keep the header, and carry the original for it.
	pods := podsOf(g, ns, "nginx")
	g.Expect(pods).To(HaveLen(2))
	for _, pod := range pods {
		g.Expect(podReady(pod)).To(BeTrue(), pod.Name)
		var app, proxy *corev1.Container
		for i := range pod.Spec.Containers {
			switch pod.Spec.Containers[i].Name {
			case "nginx":
				app = &pod.Spec.Containers[i]
			case "istio-proxy":
				proxy = &pod.Spec.Containers[i]
			}
		}
		g.Expect(app).NotTo(BeNil())
		g.Expect(proxy).NotTo(BeNil())
		// Injected by Istio's own injector (bin/istio-injector), not a double: its chart's image,
		// its istio-init container and its injection status annotation.
		g.Expect(proxy.Image).To(HavePrefix("gcr.io/istio-testing/proxyv2:1.31.0-alpha."), pod.Name)
		g.Expect(pod.Spec.InitContainers).To(ContainElement(HaveField("Name", "istio-init")), pod.Name)
		g.Expect(pod.Annotations).To(HaveKeyWithValue("sidecar.istio.io/status", ContainSubstring(`"initContainers":["istio-init"]`)), pod.Name)
		g.Expect(app.ReadinessProbe.HTTPGet.Port.IntValue()).To(Equal(15020))
		g.Expect(app.ReadinessProbe.HTTPGet.Path).To(Equal("/app-health/nginx/readyz"))
		g.Expect(app.ReadinessProbe.HTTPGet.HTTPHeaders).To(ConsistOf(corev1.HTTPHeader{Name: "Custom-Header", Value: "Awesome"}))
		var probers string
		for _, e := range proxy.Env {
			if e.Name == istiomesh.KubeAppProbersEnv {
				probers = e.Value
			}
		}
		var parsed map[string]map[string]any
		g.Expect(json.Unmarshal([]byte(probers), &parsed)).To(Succeed(), "ISTIO_KUBE_APP_PROBERS on %s", pod.Name)
		g.Expect(parsed).To(HaveKey("/app-health/nginx/readyz"))
		g.Expect(parsed["/app-health/nginx/readyz"]).To(HaveKey("httpGet"))
	}
	// Unhealthy stops: the policy reports no pod within the window (the old pods are gone).
	g.Expect(got.Status.UnhealthyPods).To(BeEmpty())
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	g.Expect(d.Status.AvailableReplicas).To(Equal(int32(2)))
}

// Scenario 2: ASM's TCP probe on an unused port (2940): falsely Ready behind the sidecar; after the
// redirect the agent's dial fails and the policy tells the truth.
func TestScenario2TCPProbeOnUnusedPortTellsTheTruth(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, "s2-tcp-unused")
	d := deployment(ns, "tcp-app", 1, tcpContainer("registry.example/app:1", 2940), nil)
	create(t, d)
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		g.Expect(d.Status.AvailableReplicas).To(Equal(int32(1)), "the sidecar makes the TCP probe pass")
	}, timeout, interval).Should(Succeed())

	p := policy(ns, "tcp", labelsFor("tcp-app"))
	create(t, p)
	eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionProbesHealthy, metav1.ConditionFalse)(g, p)
		g.Expect(p.Status.UnhealthyPods).NotTo(BeEmpty())
		g.Expect(p.Status.UnhealthyPods[0].LastMessage).To(ContainSubstring("HTTP probe failed with statuscode: 500"))
		g.Expect(p.Status.UnhealthyPods[0].ProbeKind).To(Equal(v1alpha1.ProbeReadiness))
		g.Expect(p.Status.Summary.UnhealthyPods).To(Equal(int32(1)))
	})
}

// Scenario 3: Istio's liveness example with an exec probe is left alone.
func TestScenario3ExecProbeIsNotRedirected(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t, "s3-exec")
	peerAuthentication(t, ns, strict)
	c := corev1.Container{Name: "liveness", Image: "registry.k8s.io/busybox", Args: []string{"/bin/sh", "-c", "touch /tmp/healthy; sleep 3600"},
		LivenessProbe: &corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 5,
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}}}}
	d := deployment(ns, "liveness", 1, c, nil)
	create(t, d)
	p := policy(ns, "liveness", labelsFor("liveness"))
	create(t, p)
	got := eventually(t, p, conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue))
	w := workloadStatus(got, v1alpha1.KindDeployment, "liveness")
	g.Expect(w.State).To(Equal(v1alpha1.WorkloadNotNeeded))
	g.Expect(w.Probes).To(ConsistOf(And(HaveField("Handler", v1alpha1.HandlerExec), HaveField("State", v1alpha1.ProbeNotNeeded), HaveField("Reason", v1alpha1.StatusReasonExecProbe))))
	g.Consistently(func(g Gomega) {
		_, present := templateRewrite(g, d)
		g.Expect(present).To(BeFalse())
	}, 3*time.Second, interval).Should(Succeed())
}

// Scenario 4: PeerAuthentication switched from PERMISSIVE to STRICT while a policy exists.
func TestScenario4PeerAuthenticationSwitchedToStrict(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, "s4-switch")
	pa := peerAuthentication(t, ns, securityapi.PeerAuthentication_MutualTLS_PERMISSIVE)
	d := deployment(ns, "nginx", 1, nginxContainer(), nil)
	create(t, d)
	p := policy(ns, "nginx", labelsFor("nginx"))
	create(t, p)
	eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue)(g, p)
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSPermissive))
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "nginx").State).To(Equal(v1alpha1.WorkloadNotNeeded))
	})
	_, present := templateRewrite(g, d)
	g.Expect(present).To(BeFalse())

	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pa), pa)).To(Succeed())
	pa.Spec.Mtls.Mode = strict
	g.Expect(k8s.Update(ctx, pa)).To(Succeed())
	eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Status.MTLSMode).To(Equal(v1alpha1.MTLSStrict))
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue)(g, p)
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "nginx").State).To(Equal(v1alpha1.WorkloadRedirected))
	})
	value, _ := templateRewrite(g, d)
	g.Expect(value).To(Equal("true"))
}

// Scenario 5: a StatefulSet, a DaemonSet and five Deployments under maxConcurrent 1. Concurrency
// is judged from the ReplicaSets the Deployment controller creates and scales, not from logs.
func TestScenario5OneRolloutAtATime(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := newNamespace(t, "s5-one-at-a-time")

	watcher, err := k8s.Watch(ctx, &appsv1.ReplicaSetList{}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	maxRolling, rolledOut := 0, map[string]bool{}
	replicaSets := map[string]*appsv1.ReplicaSet{}
	go func() {
		for e := range watcher.ResultChan() {
			rs, ok := e.Object.(*appsv1.ReplicaSet)
			if !ok {
				continue
			}
			mu.Lock()
			if e.Type == watch.Deleted {
				delete(replicaSets, rs.Name)
			} else {
				replicaSets[rs.Name] = rs
			}
			// A Deployment is rolling while more than one of its ReplicaSets has pods.
			withPods := map[string]int{}
			for _, r := range replicaSets {
				if owner := metav1.GetControllerOf(r); owner != nil && (r.Status.Replicas > 0 || *r.Spec.Replicas > 0) {
					withPods[owner.Name]++
				}
			}
			rolling := 0
			for name, n := range withPods {
				if n > 1 {
					rolling++
					rolledOut[name] = true
				}
			}
			maxRolling = max(maxRolling, rolling)
			mu.Unlock()
		}
	}()

	tcp := tcpContainer("registry.example/app:1", 8080)
	tcp.Ports = []corev1.ContainerPort{{Name: "tcp", ContainerPort: 8080}}
	var deployments []*appsv1.Deployment
	for i := range 5 {
		d := deployment(ns, fmt.Sprintf("web-%d", i), 2, tcp, nil)
		deployments = append(deployments, d)
		create(t, d)
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labelsFor("db")},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labelsFor("db")}, Spec: corev1.PodSpec{Containers: []corev1.Container{tcp}}}},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labelsFor("agent")},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labelsFor("agent")}, Spec: corev1.PodSpec{Containers: []corev1.Container{tcp}}}},
	}
	create(t, sts, ds)
	// Let everything settle before the policy exists, so only the operator's rollouts count.
	g.Eventually(func(g Gomega) {
		for _, d := range deployments {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(d.Status.AvailableReplicas).To(Equal(int32(2)))
		}
	}, timeout, interval).Should(Succeed())

	p := policy(ns, "all", map[string]string{}, func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = 1 })
	create(t, p)
	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionTrue)(g, p)
		g.Expect(p.Status.Summary.SelectedWorkloads).To(Equal(int32(7)))
		g.Expect(p.Status.Summary.RolledOutWorkloads).To(Equal(int32(7)))
	})
	g.Expect(workloadStatus(got, v1alpha1.KindStatefulSet, "db").State).To(Equal(v1alpha1.WorkloadRedirected))
	g.Expect(workloadStatus(got, v1alpha1.KindDaemonSet, "agent").State).To(Equal(v1alpha1.WorkloadRedirected))
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("ReplicaSet history: %d Deployments rolled, at most %d at once", len(rolledOut), maxRolling)
	g.Expect(rolledOut).To(HaveLen(5), "every Deployment rolled (the watch saw two ReplicaSets with pods)")
	g.Expect(maxRolling).To(Equal(1))
}

// Scenario 6: a user's explicit "false" survives, and a workload outside the mesh is untouched.
func TestScenario6UserFalseAndOutOfMeshAreLeftAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t, "s6-user-false")
	peerAuthentication(t, ns, strict)
	optedOut := deployment(ns, "opted-out", 1, nginxContainer(), map[string]string{istiomesh.RewriteAnnotation: "false"})
	outside := deployment(ns, "outside", 1, tcpContainer("registry.example/app:1", 8080), nil)
	outside.Spec.Template.Labels["sidecar.istio.io/inject"] = "false"
	create(t, optedOut, outside)
	p := policy(ns, "all", map[string]string{}, func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = 2 })
	create(t, p)
	eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		g.Expect(p.Status.Summary.SelectedWorkloads).To(Equal(int32(2)))
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "opted-out").State).To(Equal(v1alpha1.WorkloadOptedOut))
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "outside").State).To(Equal(v1alpha1.WorkloadNotInMesh))
		// Until the opted-out pods show the Istio version, the live pods decide (NoSidecarOnLivePods).
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "outside").Reason).To(Equal(v1alpha1.StatusReasonPodInjectionDisabled))
	})
	g.Consistently(func(g Gomega) {
		value, _ := templateRewrite(g, optedOut)
		g.Expect(value).To(Equal("false"))
		_, present := templateRewrite(g, outside)
		g.Expect(present).To(BeFalse())
		pods := podsOf(g, ns, "outside")
		for _, pod := range pods {
			for _, c := range pod.Spec.Containers {
				g.Expect(c.Name).NotTo(Equal("istio-proxy"))
			}
		}
	}, 5*time.Second, interval).Should(Succeed())
}

// Scenario 7: a rollout that cannot finish passes its deadline; the policy stalls and the workloads
// after it are not rolled.
func TestScenario7RolloutDeadlineStallsThePolicy(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t, "s7-deadline")
	stuck := deployment(ns, "a-stuck", 1, tcpContainer("registry.example/never-ready:1", 8080), nil)
	later := deployment(ns, "b-later", 1, tcpContainer("registry.example/app:1", 8080), nil)
	create(t, stuck, later)
	p := policy(ns, "all", map[string]string{}, func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.ProgressDeadlineSeconds = 20 })
	create(t, p)
	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		conditionIs(v1alpha1.ConditionStalled, metav1.ConditionTrue)(g, p)
		conditionIs(v1alpha1.ConditionReady, metav1.ConditionFalse)(g, p)
		g.Expect(workloadStatus(p, v1alpha1.KindDeployment, "a-stuck").State).To(Equal(v1alpha1.WorkloadRolloutFailed))
	})
	later2 := workloadStatus(got, v1alpha1.KindDeployment, "b-later")
	g.Expect(later2.State).To(Equal(v1alpha1.WorkloadQueued))
	g.Expect(later2.Reason).To(Equal(v1alpha1.StatusReasonPausedAfterFailure))
	g.Consistently(func(g Gomega) {
		_, present := templateRewrite(g, later)
		g.Expect(present).To(BeFalse())
	}, 5*time.Second, interval).Should(Succeed())
}

// Scenario 8: kubectl wait and kubectl get read the policy.
func TestScenario8KubectlWaitAndGet(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t, "s8-kubectl")
	peerAuthentication(t, ns, strict)
	create(t, deployment(ns, "nginx", 1, nginxContainer(), nil), policy(ns, "nginx", labelsFor("nginx")))
	out, err := kubectl(t, "wait", "--for=condition=Ready", "proberedirectpolicy/nginx", "-n", ns, "--timeout=180s")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("condition met"))

	out, err = kubectl(t, "get", "proberedirectpolicies", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred(), out)
	t.Logf("kubectl get proberedirectpolicies:\n%s", out)
	lines := strings.Split(out, "\n")
	g.Expect(lines).To(HaveLen(2))
	g.Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "MESH", "MTLS", "WORKLOADS", "REWRITTEN", "UNHEALTHY", "READY", "AGE"}))
	g.Expect(strings.Fields(lines[1])[:7]).To(Equal([]string{"nginx", "Istio", "STRICT", "1", "1", "0", "True"}))

	out, err = kubectl(t, "get", "prp", "-n", ns, "-o", "wide")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("Redirected"))
}

func ptrTo[T any](v T) *T { return &v }

// Scenario 9 (issue 8, cases 2 and 4), on the local control plane: a template whose init
// container's startup probe would deadlock behind an ordinary istio-proxy is reported and never
// annotated; a template labelled sidecar.istio.io/inject: "False" is in the mesh on Istio 1.27+
// (Istio's injector here is a 1.31 development build), and the operator, reading the version from the
// pods' istio-proxy image, redirects it.
func TestScenario9IstioRulesTheOperatorFollows(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t, "s9-istio-rules")
	peerAuthentication(t, ns, strict)
	always := corev1.ContainerRestartPolicyAlways
	reports := deployment(ns, "reports", 1, nginxContainer(), map[string]string{istiomesh.NativeSidecarAnnotation: "false"})
	reports.Spec.Template.Spec.InitContainers = []corev1.Container{{
		Name: "db-proxy", Image: "registry.example/db-proxy:1", RestartPolicy: &always,
		StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/started", Port: intstr.FromInt32(9801)}}},
	}}
	billing := deployment(ns, "billing", 1, nginxContainer(), nil)
	billing.Spec.Template.Labels["sidecar.istio.io/inject"] = "False"
	create(t, reports, billing)
	p := policy(ns, "all", map[string]string{}, func(p *v1alpha1.ProbeRedirectPolicy) { p.Spec.Rollout.MaxConcurrent = 2 })
	create(t, p)

	got := eventually(t, p, func(g Gomega, p *v1alpha1.ProbeRedirectPolicy) {
		r := workloadStatus(p, v1alpha1.KindDeployment, "reports")
		g.Expect(r.State).To(Equal(v1alpha1.WorkloadUnsupported), r.Message)
		g.Expect(r.Reason).To(Equal(v1alpha1.StatusReasonStartupProbeBeforeSidecar))
		b := workloadStatus(p, v1alpha1.KindDeployment, "billing")
		g.Expect(b.State).To(Equal(v1alpha1.WorkloadRedirected), b.Message)
	})
	g.Expect(got.Status.IstioVersion).To(MatchRegexp(`^1\.\d+\.\d+$`), "read from the pods' istio-proxy image")
	g.Expect(workloadStatus(got, v1alpha1.KindDeployment, "reports").Message).To(ContainSubstring(`init container "db-proxy"`))
	g.Consistently(func(g Gomega) {
		_, present := templateRewrite(g, reports)
		g.Expect(present).To(BeFalse(), "the operator never annotates a template it would deadlock")
	}, 3*time.Second, interval).Should(Succeed())
}
