package istio

import (
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

func httpProbe(port intstr.IntOrString, path string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path}}}
}

func tcpProbe(port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}}}
}

// grpcProbe is a gRPC probe on port 9090.
func grpcProbe(service *string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: service}}}
}

func execProbe(cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}}
}

func ptr[T any](v T) *T { return &v }

func TestAnalyzeHazards(t *testing.T) {
	named := intstr.FromString
	tests := []struct {
		name       string
		spec       corev1.PodSpec
		statusPort int32
		want       probes.Probe
		wantMsg    []string // substrings of HazardMessage
	}{
		{
			name: "plain HTTP probe has no hazard",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", ReadinessProbe: httpProbe(intstr.FromInt32(80), "/index.html")},
			}},
			statusPort: 15020,
			want:       probes.Probe{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerHTTP, Port: 80, Original: "HTTP :80/index.html"},
		},
		{
			name: "host set",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Host: "example.com", Port: intstr.FromInt32(80), Path: "/healthz"},
			}}}}},
			statusPort: 15020,
			want: probes.Probe{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerHTTP, Port: 80, Host: "example.com",
				Original: "HTTP example.com:80/healthz", Hazard: v1alpha1.StatusReasonHostSet},
			wantMsg: []string{`"example.com"`, "example.com:15020/app-health/web/readyz"},
		},
		{
			name: "named port declared on the same container",
			spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name:          "web",
				Ports:         []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				LivenessProbe: httpProbe(named("http"), "/live"),
			}}},
			statusPort: 15020,
			want:       probes.Probe{Container: "web", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerHTTP, Port: 8080, PortName: "http", Original: "HTTP :8080/live"},
		},
		{
			name: "named port declared only on another container",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", LivenessProbe: httpProbe(named("metrics"), "/live")},
				{Name: "exporter", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100}}},
			}},
			statusPort: 15020,
			want: probes.Probe{Container: "web", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerHTTP, PortName: "metrics",
				Original: "HTTP :metrics/live", Hazard: v1alpha1.StatusReasonNamedPortNotDeclared},
			wantMsg: []string{`"metrics"`, `only container "exporter"`, "400"},
		},
		{
			name: "named TCP port declared nowhere",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "db", ReadinessProbe: tcpProbe(named("sql"))},
			}},
			statusPort: 15020,
			want: probes.Probe{Container: "db", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerTCP, PortName: "sql",
				Original: "TCP :sql", Hazard: v1alpha1.StatusReasonNamedPortNotDeclared},
			wantMsg: []string{`"sql"`, KubeAppProbersEnv},
		},
		{
			name: "status port 0 on HTTP",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", StartupProbe: httpProbe(intstr.FromInt32(80), "")},
			}},
			statusPort: 0,
			want: probes.Probe{Container: "web", Kind: v1alpha1.ProbeStartup, Handler: v1alpha1.HandlerHTTP, Port: 80,
				Original: "HTTP :80/", Hazard: v1alpha1.StatusReasonStatusPortDisabled},
			wantMsg: []string{StatusPortAnnotation, "startup"},
		},
		{
			name: "status port 0 on TCP",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "db", ReadinessProbe: tcpProbe(intstr.FromInt32(2940))},
			}},
			statusPort: 0,
			want: probes.Probe{Container: "db", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerTCP, Port: 2940,
				Original: "TCP :2940", Hazard: v1alpha1.StatusReasonStatusPortDisabled},
		},
		{
			name: "status port 0 on GRPC",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "api", ReadinessProbe: grpcProbe(ptr("foo"))},
			}},
			statusPort: 0,
			want: probes.Probe{Container: "api", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerGRPC, Port: 9090,
				Original: "GRPC :9090 service=foo", Hazard: v1alpha1.StatusReasonStatusPortDisabled},
		},
		{
			name: "status port 0 outranks host set",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Host: "10.0.0.1", Port: intstr.FromInt32(80)},
			}}}}},
			statusPort: 0,
			want: probes.Probe{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerHTTP, Port: 80, Host: "10.0.0.1",
				Original: "HTTP 10.0.0.1:80/", Hazard: v1alpha1.StatusReasonStatusPortDisabled},
		},
		{
			name: "exec probe is listed without hazard even with status port 0",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "job", LivenessProbe: execProbe("cat", "/tmp/healthy")},
			}},
			statusPort: 0,
			want:       probes.Probe{Container: "job", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerExec, Original: "exec cat /tmp/healthy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := Analyze(&tt.spec, tt.statusPort)
			g.Expect(got).To(HaveLen(1))
			msg := got[0].HazardMessage
			got[0].HazardMessage = ""
			g.Expect(got[0]).To(Equal(tt.want))
			if tt.want.Hazard == "" {
				g.Expect(msg).To(BeEmpty())
				return
			}
			g.Expect(msg).To(HaveSuffix("."))
			g.Expect(msg).To(ContainSubstring(got[0].Container))
			for _, s := range tt.wantMsg {
				g.Expect(msg).To(ContainSubstring(s))
			}
		})
	}
}

func TestAnalyzeNamedPortDeclaredNowhereHasNoOwnerHint(t *testing.T) {
	g := NewWithT(t)
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "web", ReadinessProbe: httpProbe(intstr.FromString("http"), "/")}}}
	got := Analyze(&spec, DefaultStatusPort)
	g.Expect(got).To(HaveLen(1))
	g.Expect(got[0].Hazard).To(Equal(v1alpha1.StatusReasonNamedPortNotDeclared))
	g.Expect(got[0].HazardMessage).NotTo(ContainSubstring("only container"))
}

func TestAnalyzeOrderingInitContainersAndProxy(t *testing.T) {
	g := NewWithT(t)
	spec := corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "migrate"}, // no probes
			{Name: ProxyContainerName, ReadinessProbe: httpProbe(intstr.FromInt32(15021), "/healthz/ready")},
			{Name: "log-shipper", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways), StartupProbe: tcpProbe(intstr.FromInt32(24224))},
		},
		Containers: []corev1.Container{
			{
				Name:           "a",
				StartupProbe:   grpcProbe(nil),
				LivenessProbe:  tcpProbe(intstr.FromInt32(81)),
				ReadinessProbe: httpProbe(intstr.FromInt32(80), "ready"),
			},
			{Name: ProxyContainerName, StartupProbe: httpProbe(intstr.FromInt32(15021), "/healthz/ready")},
			{
				Name:           "b",
				LivenessProbe:  execProbe("true"),
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 5}, // no handler: skipped
			},
		},
	}
	got := Analyze(&spec, DefaultStatusPort)
	type row struct {
		Key      probes.Key
		Init     bool
		Handler  v1alpha1.ProbeHandler
		Original string
	}
	rows := make([]row, 0, len(got))
	for _, p := range got {
		rows = append(rows, row{Key: p.Key(), Init: p.Init, Handler: p.Handler, Original: p.Original})
	}
	g.Expect(rows).To(Equal([]row{
		{Key: probes.Key{Container: "a", Kind: v1alpha1.ProbeReadiness}, Handler: v1alpha1.HandlerHTTP, Original: "HTTP :80/ready"},
		{Key: probes.Key{Container: "a", Kind: v1alpha1.ProbeLiveness}, Handler: v1alpha1.HandlerTCP, Original: "TCP :81"},
		{Key: probes.Key{Container: "a", Kind: v1alpha1.ProbeStartup}, Handler: v1alpha1.HandlerGRPC, Original: "GRPC :9090"},
		{Key: probes.Key{Container: "b", Kind: v1alpha1.ProbeLiveness}, Handler: v1alpha1.HandlerExec, Original: "exec true"},
		{Key: probes.Key{Container: "log-shipper", Kind: v1alpha1.ProbeStartup}, Init: true, Handler: v1alpha1.HandlerTCP, Original: "TCP :24224"},
	}))
}

func TestAnalyzeNilSpec(t *testing.T) {
	NewWithT(t).Expect(Analyze(nil, DefaultStatusPort)).To(BeEmpty())
}

func TestOriginalFormats(t *testing.T) {
	tests := []struct {
		name  string
		probe *corev1.Probe
		want  string
	}{
		{name: "HTTP with path", probe: httpProbe(intstr.FromInt32(80), "/index.html"), want: "HTTP :80/index.html"},
		{name: "HTTP empty path", probe: httpProbe(intstr.FromInt32(80), ""), want: "HTTP :80/"},
		{name: "HTTP path without slash", probe: httpProbe(intstr.FromInt32(80), "healthz"), want: "HTTP :80/healthz"},
		{name: "HTTPS", probe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Scheme: corev1.URISchemeHTTPS, Port: intstr.FromInt32(8443), Path: "/healthz",
		}}}, want: "HTTPS :8443/healthz"},
		{name: "explicit HTTP scheme", probe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Scheme: corev1.URISchemeHTTP, Port: intstr.FromInt32(80),
		}}}, want: "HTTP :80/"},
		{name: "TCP", probe: tcpProbe(intstr.FromInt32(2940)), want: "TCP :2940"},
		{name: "TCP with host", probe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
			Host: "db", Port: intstr.FromInt32(5432),
		}}}, want: "TCP db:5432"},
		{name: "GRPC nil service", probe: grpcProbe(nil), want: "GRPC :9090"},
		{name: "GRPC empty service", probe: grpcProbe(ptr("")), want: "GRPC :9090"},
		{name: "GRPC service", probe: grpcProbe(ptr("foo")), want: "GRPC :9090 service=foo"},
		{name: "exec", probe: execProbe("cat", "/tmp/healthy"), want: "exec cat /tmp/healthy"},
		{name: "exec without command", probe: execProbe(), want: "exec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", ReadinessProbe: tt.probe}}}
			got := Analyze(&spec, DefaultStatusPort)
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Original).To(Equal(tt.want))
		})
	}
}

func TestOriginalTruncatesLongExec(t *testing.T) {
	g := NewWithT(t)
	spec := corev1.PodSpec{Containers: []corev1.Container{{
		Name:          "c",
		LivenessProbe: execProbe("sh", "-c", strings.Repeat("é", 300)),
	}}}
	got := Analyze(&spec, DefaultStatusPort)
	g.Expect(got).To(HaveLen(1))
	g.Expect(utf8.RuneCountInString(got[0].Original)).To(Equal(probes.MaxExecText))
	g.Expect(got[0].Original).To(HavePrefix("exec sh -c é"))
	g.Expect(got[0].Original).To(HaveSuffix("…"))
}

func TestRewrittenTarget(t *testing.T) {
	tests := []struct {
		name       string
		probe      probes.Probe
		statusPort int32
		want       string
	}{
		{name: "HTTP readiness", probe: probes.Probe{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerHTTP, Port: 80},
			statusPort: 15020, want: "HTTP :15020/app-health/web/readyz"},
		{name: "HTTPS becomes HTTP", probe: probes.Probe{Container: "web", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerHTTP, Port: 8443, Original: "HTTPS :8443/"},
			statusPort: 15020, want: "HTTP :15020/app-health/web/livez"},
		{name: "HTTP host is kept", probe: probes.Probe{Container: "web", Kind: v1alpha1.ProbeReadiness, Handler: v1alpha1.HandlerHTTP, Port: 80, Host: "example.com"},
			statusPort: 15020, want: "HTTP example.com:15020/app-health/web/readyz"},
		{name: "TCP on custom status port", probe: probes.Probe{Container: "db", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerTCP, Port: 5432, Host: "db"},
			statusPort: 123, want: "HTTP :123/app-health/db/livez"},
		{name: "GRPC startup", probe: probes.Probe{Container: "api", Kind: v1alpha1.ProbeStartup, Handler: v1alpha1.HandlerGRPC, Port: 9090},
			statusPort: 15020, want: "HTTP :15020/app-health/api/startupz"},
		{name: "exec", probe: probes.Probe{Container: "job", Kind: v1alpha1.ProbeLiveness, Handler: v1alpha1.HandlerExec},
			statusPort: 15020, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(RewrittenTarget(tt.probe, tt.statusPort)).To(Equal(tt.want))
		})
	}
}

func TestMarkStartupBeforeProxy(t *testing.T) {
	g := NewWithT(t)
	always := corev1.ContainerRestartPolicyAlways
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "db-proxy", RestartPolicy: &always, StartupProbe: httpProbe(intstr.FromInt32(9801), "/started"),
				ReadinessProbe: tcpProbe(intstr.FromInt32(9801))},
			{Name: "exec-sidecar", RestartPolicy: &always, StartupProbe: execProbe("true")},
		},
		Containers: []corev1.Container{{Name: "app", StartupProbe: httpProbe(intstr.FromInt32(8080), "/started")}},
	}
	hazards := func(native bool) map[string]v1alpha1.StatusReason {
		analysed := Analyze(spec, 15020)
		MarkStartupBeforeProxy(analysed, native)
		out := map[string]v1alpha1.StatusReason{}
		for _, p := range analysed {
			out[p.Container+"/"+string(p.Kind)] = p.Hazard
		}
		return out
	}
	g.Expect(hazards(false)).To(Equal(map[string]v1alpha1.StatusReason{
		"app/Startup":          "", // an ordinary container starts alongside istio-proxy
		"db-proxy/Readiness":   "", // readiness does not hold back the pod's start
		"db-proxy/Startup":     v1alpha1.StatusReasonStartupProbeBeforeSidecar,
		"exec-sidecar/Startup": "", // exec probes are not rewritten
	}))
	for key, hazard := range hazards(true) {
		g.Expect(hazard).To(BeEmpty(), key)
	}
}

// TestFieldsTheRewriteChanges is issue 8, case 5: each probe field whose meaning the rewrite
// changes has its own hazard; the fields Istio carries through (scheme, headers, gRPC service,
// timeouts and thresholds) have none. The expectations follow Istio's app_probe.go and the
// agent's server.go, as cited in the hazard reasons' documentation.
func TestFieldsTheRewriteChanges(t *testing.T) {
	headers := httpProbe(intstr.FromInt32(8080), "/ready")
	headers.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "Host", Value: "web.example"}, {Name: "X-Probe", Value: "1"}}
	https := httpProbe(intstr.FromInt32(8443), "/ready")
	https.HTTPGet.Scheme = corev1.URISchemeHTTPS
	timeouts := tcpProbe(intstr.FromInt32(8080))
	timeouts.TimeoutSeconds, timeouts.PeriodSeconds, timeouts.FailureThreshold = 7, 3, 9
	tcpHost := tcpProbe(intstr.FromInt32(5432))
	tcpHost.TCPSocket.Host = "db.internal"
	tests := []struct {
		name   string
		probe  *corev1.Probe
		hazard v1alpha1.StatusReason
	}{
		{"httpGet.host", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "10.0.0.1", Port: intstr.FromInt32(80)}}}, v1alpha1.StatusReasonHostSet},
		{"tcpSocket.host", tcpHost, v1alpha1.StatusReasonTCPHostIgnored},
		{"a port equal to the mesh status port", httpProbe(intstr.FromInt32(15020), "/stats/prometheus"), v1alpha1.StatusReasonPortIsStatusPort},
		{"the sidecar's health port", httpProbe(intstr.FromInt32(15021), "/healthz/ready"), v1alpha1.StatusReasonReservedPort},
		{"Envoy's Prometheus port over TCP", tcpProbe(intstr.FromInt32(15090)), v1alpha1.StatusReasonReservedPort},
		{"Envoy's admin port over gRPC", grpcProbeOn(15000), v1alpha1.StatusReasonReservedPort},
		{"HTTPS scheme: kept in the env, the agent calls HTTPS", https, ""},
		{"httpHeaders, Host among them: forwarded by the agent", headers, ""},
		{"gRPC service: kept and asked for", grpcProbe(ptr("foo")), ""},
		{"timeouts and thresholds: kept on the kubelet probe", timeouts, ""},
		{"a template istioctl kube-inject already rewrote", httpProbe(intstr.FromInt32(15020), "/app-health/web/readyz"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "web", ReadinessProbe: tt.probe}}}
			got := Analyze(spec, 15020)
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Hazard).To(Equal(tt.hazard), got[0].HazardMessage)
			if tt.hazard != "" {
				g.Expect(got[0].HazardMessage).NotTo(BeEmpty())
			}
		})
	}
	// The pod's own status port counts too.
	got := Analyze(&corev1.PodSpec{Containers: []corev1.Container{{Name: "web", ReadinessProbe: tcpProbe(intstr.FromInt32(9999))}}}, 9999)
	NewWithT(t).Expect(got[0].Hazard).To(Equal(v1alpha1.StatusReasonPortIsStatusPort))
}

func grpcProbeOn(port int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}}}
}
