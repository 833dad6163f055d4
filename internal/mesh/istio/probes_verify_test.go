package istio

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// proxy returns an istio-proxy container whose ISTIO_KUBE_APP_PROBERS is env,
// or without the variable when env is "".
func proxy(env string) corev1.Container {
	c := corev1.Container{Name: ProxyContainerName, Env: []corev1.EnvVar{{Name: "PILOT_CERT_PROVIDER", Value: "istiod"}}}
	if env != "" {
		c.Env = append(c.Env, corev1.EnvVar{Name: KubeAppProbersEnv, Value: env})
	}
	return c
}

// agentProbe is a rewritten probe: an httpGet on the default status port 15020.
func agentProbe(path string) *corev1.Probe {
	return httpProbe(intstr.FromInt32(15020), path)
}

var readyKey = probes.Key{Container: "web", Kind: v1alpha1.ProbeReadiness}

func TestVerifyPod(t *testing.T) {
	const okEnv = `{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTPS"},"timeoutSeconds":1}}`
	tests := []struct {
		name        string
		spec        corev1.PodSpec
		statusPort  int32
		wantSidecar bool
		want        probes.ProbeVerification
	}{
		{
			name: "no sidecar",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: httpProbe(intstr.FromInt32(8080), "/ready"), LivenessProbe: execProbe("true")},
			}},
			statusPort: 15020,
			want:       probes.ProbeVerification{Target: "HTTP :8080/ready", Reason: v1alpha1.StatusReasonNoSidecar},
		},
		{
			name: "rewritten with proxy in containers",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz"), LivenessProbe: execProbe("true")},
				proxy(okEnv),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Rewritten: true, Target: "HTTP :15020/app-health/web/readyz", Original: "HTTPS :8080/ready"},
		},
		{
			name: "rewritten with native sidecar proxy",
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{proxy(okEnv)},
				Containers:     []corev1.Container{{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")}},
			},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Rewritten: true, Target: "HTTP :15020/app-health/web/readyz", Original: "HTTPS :8080/ready"},
		},
		{
			name: "corrupted env JSON",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(`{"/app-health/web/readyz":{"httpGet":`),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :15020/app-health/web/readyz", Reason: v1alpha1.StatusReasonInvalidKubeAppProbers},
		},
		{
			name: "entry the agent rejects invalidates the document",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(`{"/app-health/web/readyz":{"httpGet":{"port":8080}},"/app-health/other/livez":{"httpGet":{"port":"http"}}}`),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :15020/app-health/web/readyz", Reason: v1alpha1.StatusReasonInvalidKubeAppProbers},
		},
		{
			name: "entry missing",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(`{"/app-health/web/livez":{"httpGet":{"port":8080}}}`),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :15020/app-health/web/readyz", Reason: v1alpha1.StatusReasonMissingKubeAppProbersEntry},
		},
		{
			name: "env absent",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(""),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :15020/app-health/web/readyz", Reason: v1alpha1.StatusReasonMissingKubeAppProbersEntry},
		},
		{
			name: "probe left alone",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}, ReadinessProbe: httpProbe(intstr.FromString("http"), "/ready")},
				proxy(""),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :8080/ready", Reason: v1alpha1.StatusReasonProbeNotRewritten},
		},
		{
			name: "probe targets another status port",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(okEnv),
			}},
			statusPort:  123,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :15020/app-health/web/readyz", Original: "HTTPS :8080/ready", Reason: v1alpha1.StatusReasonProbeNotRewritten},
		},
		{
			name: "probe at another container's path",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/api/readyz")},
				proxy(okEnv),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTP :15020/app-health/api/readyz", Original: "HTTPS :8080/ready", Reason: v1alpha1.StatusReasonProbeNotRewritten},
		},
		{
			name: "HTTPS towards the agent is not Istio's rewrite",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Scheme: corev1.URISchemeHTTPS, Port: intstr.FromInt32(15020), Path: "/app-health/web/readyz",
				}}}},
				proxy(okEnv),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Target: "HTTPS :15020/app-health/web/readyz", Original: "HTTPS :8080/ready", Reason: v1alpha1.StatusReasonProbeNotRewritten},
		},
		{
			name: "GRPC original",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(`{"/app-health/web/readyz":{"grpc":{"port":9090,"service":"foo"},"timeoutSeconds":10}}`),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Rewritten: true, Target: "HTTP :15020/app-health/web/readyz", Original: "GRPC :9090 service=foo"},
		},
		{
			name: "TCP original",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: agentProbe("/app-health/web/readyz")},
				proxy(`{"/app-health/web/readyz":{"tcpSocket":{"port":2940}}}`),
			}},
			statusPort:  15020,
			wantSidecar: true,
			want:        probes.ProbeVerification{Rewritten: true, Target: "HTTP :15020/app-health/web/readyz", Original: "TCP :2940"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := VerifyPod(&tt.spec, tt.statusPort)
			g.Expect(got.SidecarInjected).To(Equal(tt.wantSidecar))
			g.Expect(got.Probes).To(Equal(map[probes.Key]probes.ProbeVerification{readyKey: tt.want}), "exec probes must be left out")
		})
	}
}

func TestVerifyPodNilSpec(t *testing.T) {
	g := NewWithT(t)
	got := VerifyPod(nil, DefaultStatusPort)
	g.Expect(got.SidecarInjected).To(BeFalse())
	g.Expect(got.Probes).To(BeEmpty())
}

func TestKubeAppProbers(t *testing.T) {
	tests := []struct {
		name    string
		spec    corev1.PodSpec
		want    map[string]AppProber
		wantErr string
	}{
		{name: "no proxy", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}}},
		{name: "no variable", spec: corev1.PodSpec{Containers: []corev1.Container{proxy("")}}},
		{
			name: "valid, with lifecycle entry",
			spec: corev1.PodSpec{InitContainers: []corev1.Container{proxy(
				`{"/app-health/web/livez":{"httpGet":{"port":80},"timeoutSeconds":3},"/app-lifecycle/web/prestopz":{"tcpSocket":{"port":91}}}`,
			)}},
			want: map[string]AppProber{
				"/app-health/web/livez":       {HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}, TimeoutSeconds: 3},
				"/app-lifecycle/web/prestopz": {TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(91)}},
			},
		},
		{
			name: "last value wins",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: ProxyContainerName, Env: []corev1.EnvVar{
				{Name: KubeAppProbersEnv, Value: `not json`},
				{Name: KubeAppProbersEnv, Value: `{"/app-health/web/readyz":{"grpc":{"port":9090}}}`},
			}}}},
			want: map[string]AppProber{"/app-health/web/readyz": {GRPC: &corev1.GRPCAction{Port: 9090}}},
		},
		{name: "not JSON", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`{`)}}, wantErr: "parsing"},
		{name: "not an object", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`[]`)}}, wantErr: "parsing"},
		{name: "bad key", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`{"/healthz":{"httpGet":{"port":80}}}`)}}, wantErr: "does not match"},
		{name: "null entry", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`{"/app-health/web/livez":null}`)}}, wantErr: "null"},
		{name: "no handler", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`{"/app-health/web/livez":{"timeoutSeconds":1}}`)}}, wantErr: "exactly one"},
		{
			name:    "two handlers",
			spec:    corev1.PodSpec{Containers: []corev1.Container{proxy(`{"/app-health/web/livez":{"httpGet":{"port":80},"tcpSocket":{"port":80}}}`)}},
			wantErr: "exactly one",
		},
		{name: "named HTTP port", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`{"/app-health/web/livez":{"httpGet":{"port":"http"}}}`)}}, wantErr: "not an integer"},
		{name: "named TCP port", spec: corev1.PodSpec{Containers: []corev1.Container{proxy(`{"/app-health/web/livez":{"tcpSocket":{"port":"db"}}}`)}}, wantErr: "not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := KubeAppProbers(&tt.spec)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				g.Expect(got).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}
