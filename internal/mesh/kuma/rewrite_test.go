package kuma

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

func httpProbe(port intstr.IntOrString, path string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path}}}
}

func TestRewrite(t *testing.T) {
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	svc := "grpc.health"
	tests := []struct {
		name    string
		in      *corev1.Probe
		want    *corev1.Probe
		wantErr bool
	}{
		{name: "named port, path without slash", in: httpProbe(intstr.FromString("http"), "healthz"),
			want: httpProbe(intstr.FromInt32(9001), "/8080/healthz")},
		{name: "empty path", in: httpProbe(intstr.FromInt32(8080), ""), want: httpProbe(intstr.FromInt32(9001), "/8080/")},
		{name: "undeclared named port becomes 0", in: httpProbe(intstr.FromString("metrics"), "/m"), want: httpProbe(intstr.FromInt32(9001), "/0/m")},
		{name: "host header renamed, host and scheme dropped", in: &corev1.Probe{TimeoutSeconds: 3, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Host: "example.com", Scheme: corev1.URISchemeHTTPS, Port: intstr.FromInt32(8443), Path: "/h",
			HTTPHeaders: []corev1.HTTPHeader{{Name: "A", Value: "1"}, {Name: "Host", Value: "v.example"}, {Name: "host", Value: "x"}},
		}}}, want: &corev1.Probe{TimeoutSeconds: 3, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Port: intstr.FromInt32(9001), Path: "/8443/h",
			HTTPHeaders: []corev1.HTTPHeader{{Name: "A", Value: "1"}, {Name: "X-Kuma-Probes-Host", Value: "v.example"}, {Name: "host", Value: "x"},
				{Name: "X-Kuma-Probes-Scheme", Value: "HTTPS"}, {Name: "X-Kuma-Probes-Timeout", Value: "3"}},
		}}}},
		{name: "tcp with host", in: &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: "db", Port: intstr.FromString("http")}}},
			want: &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(9001), Path: "/tcp/8080"}}}},
		{name: "grpc", in: &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: &svc}}},
			want: &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(9001), Path: "/grpc/9090",
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Kuma-Probes-Timeout", Value: "2"}, {Name: "X-Kuma-Probes-GRPC-Service", Value: "grpc.health"}}}}}},
		{name: "exec unchanged", in: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
			want: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}},
		{name: "port is the proxy port", in: httpProbe(intstr.FromInt32(9001), "/"), wantErr: true},
		{name: "grpc on the proxy port", in: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9001}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			got, err := Rewrite(c, tt.in, 9001)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(before, tt.in) {
				t.Error("Rewrite changed its input")
			}
		})
	}
	if got, _ := Rewrite(c, httpProbe(intstr.FromInt32(80), "/"), 0); !reflect.DeepEqual(got, httpProbe(intstr.FromInt32(80), "/")) {
		t.Errorf("proxy port 0 must leave the probe alone: %+v", got)
	}
}

func TestRewriteVirtual(t *testing.T) {
	c := &corev1.Container{Name: "app"}
	in := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Host: "h", Port: intstr.FromInt32(8443), Path: "x"}}}
	got, err := RewriteVirtual(c, in, 9000)
	want := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Host: "h", Port: intstr.FromInt32(9000), Path: "/8443/x"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v", got, err)
	}
	tcp := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5432)}}}
	if got, _ := RewriteVirtual(c, tcp, 9000); !reflect.DeepEqual(got, tcp) {
		t.Errorf("virtual probes must leave TCP alone: %+v", got)
	}
	if _, err := RewriteVirtual(c, httpProbe(intstr.FromInt32(9000), "/"), 9000); err == nil {
		t.Error("no error for a probe on the virtual port")
	}
}

func TestRewrittenTarget(t *testing.T) {
	tests := []struct {
		p    probes.Probe
		want string
	}{
		{probes.Probe{Handler: v1alpha1.HandlerHTTP, Port: 8080, Original: "HTTP :8080/healthz"}, "HTTP :9001/8080/healthz"},
		{probes.Probe{Handler: v1alpha1.HandlerHTTP, Port: 8443, Host: "h", Original: "HTTPS h:8443/a/b?x=1"}, "HTTP :9001/8443/a/b?x=1"},
		{probes.Probe{Handler: v1alpha1.HandlerTCP, Port: 5432, Original: "TCP :5432"}, "HTTP :9001/tcp/5432"},
		{probes.Probe{Handler: v1alpha1.HandlerGRPC, Port: 9090, Original: "GRPC :9090 service=x"}, "HTTP :9001/grpc/9090"},
		{probes.Probe{Handler: v1alpha1.HandlerExec, Original: "exec true"}, ""},
	}
	for _, tt := range tests {
		if got := RewrittenTarget(tt.p, 9001); got != tt.want {
			t.Errorf("RewrittenTarget(%s) = %q, want %q", tt.p.Original, got, tt.want)
		}
	}
}

func TestOriginalsHazards(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{
		{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: httpProbe(intstr.FromString("http"), "/ready"),
			LivenessProbe:  httpProbe(intstr.FromInt32(9001), "/live"),
			StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "other", Port: intstr.FromInt32(8080)}}}},
		{Name: "db",
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}},
		{Name: ProxyContainerName, ReadinessProbe: httpProbe(intstr.FromInt32(9901), "/ready")},
	}}
	got, rewritten := Originals(spec, nil, 9001)
	if rewritten != 0 {
		t.Errorf("rewritten = %d", rewritten)
	}
	want := []struct {
		original string
		hazard   v1alpha1.StatusReason
	}{
		{"HTTP :8080/ready", ""},
		{"HTTP :9001/live", v1alpha1.StatusReasonProbePortIsProxyPort},
		{"HTTP other:8080/", v1alpha1.StatusReasonProbeHostDropped},
		{"TCP :http", v1alpha1.StatusReasonNamedPortNotDeclared},
		{"exec true", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d probes: %+v", len(got), got)
	}
	for i, w := range want {
		if got[i].Original != w.original || got[i].Hazard != w.hazard || (w.hazard != "" && got[i].HazardMessage == "") {
			t.Errorf("probe %d: %q %s %q; want %q %s", i, got[i].Original, got[i].Hazard, got[i].HazardMessage, w.original, w.hazard)
		}
	}
	if got[3].HazardMessage == "" || !strings.Contains(got[3].HazardMessage, `only container "web"`) {
		t.Errorf("named port message: %q", got[3].HazardMessage)
	}

	// A gateway pod: every redirectable probe is hazardous.
	g, _ := Originals(spec, map[string]string{GatewayAnnotation: "enabled"}, 9001)
	if g[0].Hazard != v1alpha1.StatusReasonGatewayPod || g[4].Hazard != "" {
		t.Errorf("gateway: %+v", g)
	}
	// A container that declares the proxy port.
	busy := &corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 9001}},
		ReadinessProbe: httpProbe(intstr.FromInt32(8080), "/")}}}
	if b, _ := Originals(busy, nil, 9001); b[0].Hazard != v1alpha1.StatusReasonProbeProxyPortInUse {
		t.Errorf("port in use: %+v", b)
	}
}

func TestOriginalsAlreadyRewritten(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "web",
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(9001), Path: "/8443/h?x=1",
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Kuma-Probes-Scheme", Value: "HTTPS"}}}}},
		LivenessProbe: httpProbe(intstr.FromInt32(9001), "/tcp/5432"),
		StartupProbe:  httpProbe(intstr.FromInt32(9001), "/grpc/9090"),
	}}}
	got, rewritten := Originals(spec, nil, 9001)
	if rewritten != 3 {
		t.Fatalf("rewritten = %d", rewritten)
	}
	for i, w := range []string{"HTTPS :8443/h?x=1", "TCP :5432", "GRPC :9090"} {
		if got[i].Original != w || got[i].Hazard != "" {
			t.Errorf("probe %d: %+v, want %q", i, got[i], w)
		}
	}
	// Not Kuma's form: a path kuma-dp does not serve is the user's own probe on the proxy port.
	odd := &corev1.PodSpec{Containers: []corev1.Container{{Name: "web", ReadinessProbe: httpProbe(intstr.FromInt32(9001), "/healthz")}}}
	if o, n := Originals(odd, nil, 9001); n != 0 || o[0].Hazard != v1alpha1.StatusReasonProbePortIsProxyPort {
		t.Errorf("odd: %+v %d", o, n)
	}
}

func TestVerifyPodVirtualProbes(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Annotations = map[string]string{ProbeProxyPortAnnotation: "0", VirtualProbesAnnotation: "enabled", VirtualProbesPortAnnotation: "9000"}
	pod.Spec.Containers = []corev1.Container{
		{Name: ProxyContainerName},
		{Name: "web", ReadinessProbe: httpProbe(intstr.FromInt32(9000), "/8080/ready"),
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5432)}}},
			StartupProbe:  httpProbe(intstr.FromInt32(8080), "/start")},
	}
	v := VerifyPod(pod)
	r := v.Probes[probes.Key{Container: "web", Kind: v1alpha1.ProbeReadiness}]
	l := v.Probes[probes.Key{Container: "web", Kind: v1alpha1.ProbeLiveness}]
	s := v.Probes[probes.Key{Container: "web", Kind: v1alpha1.ProbeStartup}]
	if !r.Rewritten || r.Original != "HTTP :8080/ready" || r.Target != "HTTP :9000/8080/ready" {
		t.Errorf("readiness: %+v", r)
	}
	if l.Rewritten || l.Reason != v1alpha1.StatusReasonVirtualProbesHTTPOnly {
		t.Errorf("liveness: %+v", l)
	}
	if s.Rewritten || s.Reason != v1alpha1.StatusReasonProbeNotRewritten {
		t.Errorf("startup: %+v", s)
	}
	pod.Annotations[ProbeProxyPortAnnotation] = "nine"
	if v := VerifyPod(pod); v.Probes[probes.Key{Container: "web", Kind: v1alpha1.ProbeStartup}].Reason != v1alpha1.StatusReasonInvalidProbeProxyPort {
		t.Errorf("invalid port: %+v", v.Probes)
	}
	// A probe proxy form on the wrong port is not rewritten.
	pod.Annotations = map[string]string{ProbeProxyPortAnnotation: "9001"}
	pod.Spec.Containers[1].ReadinessProbe = httpProbe(intstr.FromInt32(9000), "/8080/ready")
	if v := VerifyPod(pod); v.Probes[probes.Key{Container: "web", Kind: v1alpha1.ProbeReadiness}].Reason != v1alpha1.StatusReasonProbeNotRewritten {
		t.Errorf("wrong port: %+v", v.Probes)
	}
	if VerifyPod(nil).SidecarInjected {
		t.Error("nil pod")
	}
}
