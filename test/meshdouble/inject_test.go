package meshdouble

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

func httpProbe(port intstr.IntOrString, path string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path}}}
}

// rewrittenProbe is what Istio turns any httpGet/tcpSocket/grpc probe
// without extra fields into.
func rewrittenProbe(port int32, path string) *corev1.Probe {
	return httpProbe(intstr.FromInt32(port), path)
}

// webPod has one app container "web" with an HTTP readiness probe on a named
// port and a TCP liveness probe.
func webPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:           "web",
			Image:          "web:1",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: httpProbe(intstr.FromString("http"), "/ready"),
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9000)},
			}},
		}}},
	}
}

const webProbers = `{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}},` +
	`"/app-health/web/livez":{"tcpSocket":{"port":9000}}}`

func proxies(spec *corev1.PodSpec) []corev1.Container {
	var out []corev1.Container
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range cs {
			if c.Name == istiomesh.ProxyContainerName {
				out = append(out, c)
			}
		}
	}
	return out
}

// probersEnv returns every ISTIO_KUBE_APP_PROBERS value on istio-proxy.
func probersEnv(spec *corev1.PodSpec) []string {
	var out []string
	for _, p := range proxies(spec) {
		for _, e := range p.Env {
			if e.Name == istiomesh.KubeAppProbersEnv {
				out = append(out, e.Value)
			}
		}
	}
	return out
}

func TestInjectAddsProxyOnceAndIsIdempotent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
	}{
		{name: "default status port"},
		{name: "status port annotation", annotations: map[string]string{istiomesh.StatusPortAnnotation: "123"}},
		{name: "rewrite off", annotations: map[string]string{istiomesh.RewriteAnnotation: "false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cfg := Config{RewriteAppHTTPProbe: true, StatusPort: 15020, ProxyImage: "proxy:test"}
			pod := webPod(tc.annotations)

			_, err := Inject(pod, cfg)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(proxies(&pod.Spec)).To(HaveLen(1))
			proxy := proxies(&pod.Spec)[0]
			g.Expect(proxy.Image).To(Equal("proxy:test"))
			g.Expect(proxy.Args).To(Equal([]string{"proxy", "sidecar"}))
			g.Expect(proxy.Ports).To(ContainElement(corev1.ContainerPort{
				Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}))
			g.Expect(proxy.ReadinessProbe.HTTPGet.Path).To(Equal("/healthz/ready"))
			g.Expect(proxy.ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromInt32(15021)))
			g.Expect(pod.Annotations).To(HaveKeyWithValue(StatusAnnotation,
				`{"initContainers":null,"containers":["istio-proxy"],"volumes":null,"imagePullSecrets":null,"revision":"default"}`))

			once := pod.DeepCopy()
			_, err = Inject(pod, cfg)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pod).To(Equal(once), "a second Inject must change nothing")
		})
	}
}

func TestInjectKeepsExistingProxy(t *testing.T) {
	g := NewWithT(t)
	pod := webPod(nil)
	native := corev1.Container{Name: istiomesh.ProxyContainerName, Image: "mine",
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	pod.Spec.InitContainers = []corev1.Container{native}

	rewritten, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rewritten).To(BeTrue())
	g.Expect(proxies(&pod.Spec)).To(HaveLen(1))
	g.Expect(pod.Spec.Containers).To(HaveLen(1), "no second istio-proxy in containers")
	g.Expect(pod.Spec.InitContainers[0].Image).To(Equal("mine"))
	g.Expect(pod.Spec.InitContainers[0].Env).To(HaveLen(1))
	g.Expect(pod.Spec.InitContainers[0].Env[0].Value).To(MatchJSON(webProbers))
	g.Expect(pod.Annotations[StatusAnnotation]).To(ContainSubstring(`"initContainers":["istio-proxy"]`))
}

func TestInjectRewriteDecision(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		meshDefault bool
		want        bool
	}{
		{name: "absent, mesh on", meshDefault: true, want: true},
		{name: "absent, mesh off", meshDefault: false, want: false},
		{name: "true, mesh off", annotations: map[string]string{istiomesh.RewriteAnnotation: "true"}, want: true},
		{name: "TRUE, mesh off", annotations: map[string]string{istiomesh.RewriteAnnotation: "TRUE"}, want: true},
		{name: "1, mesh off", annotations: map[string]string{istiomesh.RewriteAnnotation: "1"}, want: true},
		{name: "false, mesh on", annotations: map[string]string{istiomesh.RewriteAnnotation: "false"}, meshDefault: true, want: false},
		{name: "F, mesh on", annotations: map[string]string{istiomesh.RewriteAnnotation: "F"}, meshDefault: true, want: false},
		{name: "0, mesh on", annotations: map[string]string{istiomesh.RewriteAnnotation: "0"}, meshDefault: true, want: false},
		{name: "unparsable yes, mesh off", annotations: map[string]string{istiomesh.RewriteAnnotation: "yes"}, want: false},
		{name: "unparsable no, mesh on", annotations: map[string]string{istiomesh.RewriteAnnotation: "no"}, meshDefault: true, want: true},
		{name: "empty, mesh on", annotations: map[string]string{istiomesh.RewriteAnnotation: ""}, meshDefault: true, want: true},
		{name: "empty, mesh off", annotations: map[string]string{istiomesh.RewriteAnnotation: ""}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := webPod(tc.annotations)
			original := pod.Spec.Containers[0].DeepCopy()

			rewritten, err := Inject(pod, Config{RewriteAppHTTPProbe: tc.meshDefault})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rewritten).To(Equal(tc.want))
			g.Expect(proxies(&pod.Spec)).To(HaveLen(1), "the sidecar is added either way")
			web := pod.Spec.Containers[0]
			if tc.want {
				g.Expect(web.ReadinessProbe).To(Equal(rewrittenProbe(15020, "/app-health/web/readyz")))
				g.Expect(web.LivenessProbe).To(Equal(rewrittenProbe(15020, "/app-health/web/livez")))
				g.Expect(probersEnv(&pod.Spec)).To(HaveLen(1))
				g.Expect(probersEnv(&pod.Spec)[0]).To(MatchJSON(webProbers))
			} else {
				g.Expect(&web).To(Equal(original), "probes untouched")
				g.Expect(probersEnv(&pod.Spec)).To(BeEmpty())
			}
		})
	}
}

func TestInjectStatusPort(t *testing.T) {
	t.Run("annotation moves the kubelet target, not the document", func(t *testing.T) {
		g := NewWithT(t)
		pod := webPod(map[string]string{istiomesh.StatusPortAnnotation: "123"})
		_, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod.Spec.Containers[0].ReadinessProbe).To(Equal(rewrittenProbe(123, "/app-health/web/readyz")))
		g.Expect(pod.Spec.Containers[0].LivenessProbe).To(Equal(rewrittenProbe(123, "/app-health/web/livez")))
		g.Expect(probersEnv(&pod.Spec)[0]).To(MatchJSON(webProbers))
	})
	t.Run("mesh status port", func(t *testing.T) {
		g := NewWithT(t)
		pod := webPod(nil)
		_, err := Inject(pod, Config{RewriteAppHTTPProbe: true, StatusPort: 15555})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod.Spec.Containers[0].ReadinessProbe).To(Equal(rewrittenProbe(15555, "/app-health/web/readyz")))
	})
	t.Run("already on the mesh port is skipped in the document", func(t *testing.T) {
		// Istio's DumpAppProbers compares with the MESH status port, so a
		// probe on 15020 is "already rewritten" even when the pod's own
		// status port is 123; the kubelet probe still moves to 123.
		g := NewWithT(t)
		pod := webPod(map[string]string{istiomesh.StatusPortAnnotation: "123"})
		pod.Spec.Containers[0].LivenessProbe = httpProbe(intstr.FromInt32(15020), "/custom")
		_, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod.Spec.Containers[0].LivenessProbe).To(Equal(rewrittenProbe(123, "/app-health/web/livez")))
		g.Expect(probersEnv(&pod.Spec)[0]).To(MatchJSON(`{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}`))
	})
	t.Run("0 points probes at port 0 and drops the proxy readiness probe", func(t *testing.T) {
		g := NewWithT(t)
		pod := webPod(map[string]string{istiomesh.StatusPortAnnotation: "0"})
		_, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod.Spec.Containers[0].ReadinessProbe).To(Equal(rewrittenProbe(0, "/app-health/web/readyz")))
		g.Expect(proxies(&pod.Spec)[0].ReadinessProbe).To(BeNil())
	})
	for _, bad := range []string{"abc", "-1", "65536", ""} {
		t.Run("invalid "+bad+" fails injection", func(t *testing.T) {
			g := NewWithT(t)
			pod := webPod(map[string]string{istiomesh.StatusPortAnnotation: bad})
			before := pod.DeepCopy()
			_, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
			g.Expect(err).To(MatchError(ContainSubstring(istiomesh.StatusPortAnnotation)))
			g.Expect(pod).To(Equal(before))
		})
	}
}

func TestInjectMergesExistingProbers(t *testing.T) {
	existingProxy := func(value string) corev1.Container {
		return corev1.Container{Name: istiomesh.ProxyContainerName, Image: "proxy", Env: []corev1.EnvVar{
			{Name: "A", Value: "a"},
			{Name: istiomesh.KubeAppProbersEnv, Value: value},
			{Name: "B", Value: "b"},
		}}
	}
	for _, tc := range []struct {
		name     string
		existing string
		want     string
	}{
		{
			name:     "other container's entry is kept",
			existing: `{"/app-health/late/readyz":{"httpGet":{"port":7000}}}`,
			want: `{"/app-health/late/readyz":{"httpGet":{"port":7000}},` +
				`"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}},` +
				`"/app-health/web/livez":{"tcpSocket":{"port":9000}}}`,
		},
		{
			name:     "existing entry wins",
			existing: `{"/app-health/web/readyz":{"httpGet":{"path":"/old","port":1}}}`,
			want: `{"/app-health/web/readyz":{"httpGet":{"path":"/old","port":1}},` +
				`"/app-health/web/livez":{"tcpSocket":{"port":9000}}}`,
		},
		{name: "empty value", existing: ``, want: webProbers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := webPod(nil)
			pod.Spec.Containers = append(pod.Spec.Containers, existingProxy(tc.existing))
			_, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
			g.Expect(err).NotTo(HaveOccurred())
			env := pod.Spec.Containers[1].Env
			g.Expect(env).To(HaveLen(3), "merged in place, not appended")
			g.Expect(env[0]).To(Equal(corev1.EnvVar{Name: "A", Value: "a"}))
			g.Expect(env[1].Name).To(Equal(istiomesh.KubeAppProbersEnv))
			g.Expect(env[1].Value).To(MatchJSON(tc.want))
			g.Expect(env[2]).To(Equal(corev1.EnvVar{Name: "B", Value: "b"}))
		})
	}
	t.Run("invalid existing value is an error", func(t *testing.T) {
		g := NewWithT(t)
		pod := webPod(nil)
		pod.Spec.Containers = append(pod.Spec.Containers, existingProxy(`not json`))
		_, err := Inject(pod, Config{RewriteAppHTTPProbe: true})
		g.Expect(err).To(MatchError(ContainSubstring(istiomesh.KubeAppProbersEnv)))
	})
}

func TestRewriteProbes(t *testing.T) {
	exec := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	for _, tc := range []struct {
		name string
		in   corev1.Container
		// want is the container after the rewrite; nil means unchanged.
		want    *corev1.Container
		probers string
	}{
		{
			name: "httpGet keeps host, headers, HTTPS in the document; kubelet gets HTTP",
			in: corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromInt32(8443), Host: "example.com", Scheme: corev1.URISchemeHTTPS,
					HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}},
				}},
				TimeoutSeconds: 5, PeriodSeconds: 7, FailureThreshold: 2, InitialDelaySeconds: 3,
			}},
			want: &corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/app-health/app/readyz", Port: intstr.FromInt32(15020), Host: "example.com", Scheme: corev1.URISchemeHTTP,
					HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}},
				}},
				TimeoutSeconds: 5, PeriodSeconds: 7, FailureThreshold: 2, InitialDelaySeconds: 3,
			}},
			probers: `{"/app-health/app/readyz":{"httpGet":{"path":"/healthz","port":8443,"host":"example.com","scheme":"HTTPS",` +
				`"httpHeaders":[{"name":"X-Probe","value":"1"}]},"timeoutSeconds":5}}`,
		},
		{
			name: "tcpSocket becomes httpGet, host dropped",
			in: corev1.Container{Name: "db", StartupProbe: &corev1.Probe{
				ProbeHandler:   corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5432), Host: "h"}},
				TimeoutSeconds: 1,
			}},
			want: &corev1.Container{Name: "db", StartupProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/app-health/db/startupz", Port: intstr.FromInt32(15020)}},
				TimeoutSeconds: 1,
			}},
			probers: `{"/app-health/db/startupz":{"tcpSocket":{"port":5432,"host":"h"},"timeoutSeconds":1}}`,
		},
		{
			name: "grpc becomes httpGet; service null when unset",
			in: corev1.Container{Name: "rpc",
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					GRPC: &corev1.GRPCAction{Port: 1234, Service: ptr.To("foo")}}, TimeoutSeconds: 10},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 1235}}},
			},
			want: &corev1.Container{Name: "rpc",
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/app-health/rpc/livez", Port: intstr.FromInt32(15020)}}, TimeoutSeconds: 10},
				ReadinessProbe: rewrittenProbe(15020, "/app-health/rpc/readyz"),
			},
			probers: `{"/app-health/rpc/livez":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10},` +
				`"/app-health/rpc/readyz":{"grpc":{"port":1235,"service":null}}}`,
		},
		{
			name:    "exec untouched, no document",
			in:      corev1.Container{Name: "sh", ReadinessProbe: exec, LivenessProbe: exec, StartupProbe: exec},
			probers: "",
		},
		{
			name: "named port resolved through the same container",
			in: corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "mgmt", ContainerPort: 9090}},
				LivenessProbe: httpProbe(intstr.FromString("mgmt"), "/live")},
			want: &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "mgmt", ContainerPort: 9090}},
				LivenessProbe: rewrittenProbe(15020, "/app-health/app/livez")},
			probers: `{"/app-health/app/livez":{"httpGet":{"path":"/live","port":9090}}}`,
		},
		{
			name: "undeclared named port: rewritten, but no entry",
			in:   corev1.Container{Name: "app", LivenessProbe: httpProbe(intstr.FromString("mgmt"), "/live")},
			want: &corev1.Container{Name: "app", LivenessProbe: rewrittenProbe(15020, "/app-health/app/livez")},
		},
		{
			name: "probe already on the status port: no entry",
			in:   corev1.Container{Name: "app", ReadinessProbe: rewrittenProbe(15020, "/app-health/app/readyz")},
		},
		{
			name: "lifecycle httpGet and tcpSocket rewritten without timeout, exec kept",
			in: corev1.Container{Name: "app", Lifecycle: &corev1.Lifecycle{
				PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(91), Path: "/stop"}},
				PostStart: &corev1.LifecycleHandler{
					TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(93)}},
			}},
			want: &corev1.Container{Name: "app", Lifecycle: &corev1.Lifecycle{
				PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
					Port: intstr.FromInt32(15020), Path: "/app-lifecycle/app/prestopz"}},
				PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
					Port: intstr.FromInt32(15020), Path: "/app-lifecycle/app/poststartz"}},
			}},
			probers: `{"/app-lifecycle/app/prestopz":{"httpGet":{"path":"/stop","port":91}},` +
				`"/app-lifecycle/app/poststartz":{"tcpSocket":{"port":93}}}`,
		},
		{
			name: "lifecycle exec and sleep untouched",
			in: corev1.Container{Name: "app", Lifecycle: &corev1.Lifecycle{
				PreStop:   &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}},
				PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
			}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			spec := &corev1.PodSpec{Containers: []corev1.Container{*tc.in.DeepCopy()}}
			probers, err := RewriteProbes(spec, 15020)
			g.Expect(err).NotTo(HaveOccurred())
			want := tc.want
			if want == nil {
				want = &tc.in
			}
			g.Expect(spec.Containers[0]).To(Equal(*want))
			if tc.probers == "" {
				g.Expect(probers).To(BeEmpty())
			} else {
				g.Expect(probers).To(MatchJSON(tc.probers))
			}
		})
	}
}

func TestRewriteProbesCoversInitContainersAndSkipsProxy(t *testing.T) {
	g := NewWithT(t)
	proxyProbe := httpProbe(intstr.FromInt32(15021), "/healthz/ready")
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "native", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				ReadinessProbe: httpProbe(intstr.FromInt32(3333), "")},
			{Name: istiomesh.ProxyContainerName, ReadinessProbe: proxyProbe.DeepCopy()},
		},
		Containers: []corev1.Container{{Name: "main", LivenessProbe: httpProbe(intstr.FromInt32(80), "/")}},
	}
	probers, err := RewriteProbes(spec, 15020)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(probers).To(MatchJSON(`{"/app-health/native/readyz":{"httpGet":{"port":3333}},` +
		`"/app-health/main/livez":{"httpGet":{"path":"/","port":80}}}`))
	g.Expect(spec.InitContainers[0].ReadinessProbe).To(Equal(rewrittenProbe(15020, "/app-health/native/readyz")))
	g.Expect(spec.InitContainers[1].ReadinessProbe).To(Equal(proxyProbe), "istio-proxy's own probe is not rewritten")
	g.Expect(spec.Containers[0].LivenessProbe).To(Equal(rewrittenProbe(15020, "/app-health/main/livez")))
	g.Expect(spec.InitContainers[1].Env).To(BeEmpty(), "RewriteProbes does not set the env")
}

func TestRewriteProbesDoesNotAliasInput(t *testing.T) {
	g := NewWithT(t)
	shared := httpProbe(intstr.FromString("http"), "/x")
	spec := &corev1.PodSpec{Containers: []corev1.Container{{
		Name: "a", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}}, ReadinessProbe: shared,
	}}}
	_, err := RewriteProbes(spec, 15020)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shared).To(Equal(httpProbe(intstr.FromString("http"), "/x")), "the caller's probe object is not mutated")
}

// The double formats prober URLs itself; they must agree with the operator's
// istiomesh.ProberPath, or one of the two is wrong.
func TestProberURLsAgreeWithMeshProberPath(t *testing.T) {
	g := NewWithT(t)
	u := formatProberURL("c-1")
	g.Expect(u.readyz).To(Equal(istiomesh.ProberPath("c-1", v1alpha1.ProbeReadiness)))
	g.Expect(u.livez).To(Equal(istiomesh.ProberPath("c-1", v1alpha1.ProbeLiveness)))
	g.Expect(u.startupz).To(Equal(istiomesh.ProberPath("c-1", v1alpha1.ProbeStartup)))
}

func TestSidecarStatusIsJSON(t *testing.T) {
	g := NewWithT(t)
	pod := webPod(nil)
	_, err := Inject(pod, Config{})
	g.Expect(err).NotTo(HaveOccurred())
	var status map[string]any
	g.Expect(json.Unmarshal([]byte(pod.Annotations[StatusAnnotation]), &status)).To(Succeed())
	g.Expect(status).To(HaveKeyWithValue("containers", []any{"istio-proxy"}))
}

func TestInjectNilPod(t *testing.T) {
	g := NewWithT(t)
	_, err := Inject(nil, Config{})
	g.Expect(err).To(HaveOccurred())
	_, err = RewriteProbes(nil, 15020)
	g.Expect(err).To(HaveOccurred())
}
