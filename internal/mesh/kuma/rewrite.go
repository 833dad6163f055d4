package kuma

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// The X-Kuma-Probes-* headers Kuma's probe converter adds and kuma-dp reads and strips
// (pkg/plugins/runtime/k8s/probes/headers.go; app/kuma-dp/pkg/dataplane/probes/http.go).
const (
	headerPrefix      = "X-Kuma-Probes-"
	headerTimeout     = headerPrefix + "Timeout"
	headerHost        = headerPrefix + "Host"
	headerScheme      = headerPrefix + "Scheme"
	headerGRPCService = headerPrefix + "GRPC-Service"
)

// The paths kuma-dp's probe proxy serves (app/kuma-dp/pkg/dataplane/probes/component.go,
// httpPathPattern and tcpGRPCPathPattern): /<port><path>, /tcp/<port>, /grpc/<port>.
var (
	proxyHTTPPath    = regexp.MustCompile(`^/(\d+)(/.*)?$`)
	proxyTCPGRPCPath = regexp.MustCompile(`^/(tcp|grpc)/(\d+)(/.*)?$`)
)

// kumaPort is the port Kuma's converter sees for an httpGet or tcpSocket port after its named-port
// resolution (pod_probe_overrider.go, namedPortResolver): an integer as is; a name declared by the
// container's ports becomes its number (the first match); any other name is read with
// intstr.IntValue, which gives 0 for a name, so the rewritten probe then targets port 0.
func kumaPort(c *corev1.Container, port intstr.IntOrString) int32 {
	if port.IntValue() != 0 {
		return int32(port.IntValue())
	}
	for _, cp := range c.Ports {
		if cp.Name != "" && cp.Name == port.String() {
			return cp.ContainerPort
		}
	}
	return int32(port.IntValue())
}

// Rewrite predicts Kuma's rewrite of probe, a probe of container c, onto the application probe
// proxy on proxyPort. It returns a new probe and never changes probe. It follows
// pkg/plugins/runtime/k8s/probes/pod_probe_overrider.go (overrideProbe, namedPortResolver) and
// probe_converter.go (ProxiedApplicationProbe.ToVirtual) at v2.14.3:
//
//   - httpGet port P (a name resolved against c.Ports), path X: httpGet on proxyPort, path
//     "/P" + X (X gets a leading "/" if it lacks one). The first header named exactly "Host" is
//     renamed X-Kuma-Probes-Host in place; the other httpHeaders are kept in order; then
//     X-Kuma-Probes-Scheme: <scheme> is added when the scheme is set and not HTTP, and
//     X-Kuma-Probes-Timeout: N when timeoutSeconds > 1. httpGet.host and the scheme are dropped.
//   - tcpSocket port P: httpGet on proxyPort, path "/tcp/P", with the timeout header; the host is
//     dropped.
//   - grpc port P, service S: httpGet on proxyPort, path "/grpc/P", with the timeout header and then
//     X-Kuma-Probes-GRPC-Service: S when S is not empty.
//   - exec, or no handler: unchanged.
//
// Every other field (timeouts, periods, thresholds) is kept. It returns an error where Kuma's
// injector refuses the pod: the probe's port (after name resolution) equals proxyPort. A named port
// the container does not declare is rewritten to port 0, as Kuma does. proxyPort 0 means the probe
// proxy is off: the probe is returned unchanged.
func Rewrite(c *corev1.Container, probe *corev1.Probe, proxyPort int32) (*corev1.Probe, error) {
	if probe == nil {
		return nil, nil
	}
	out := probe.DeepCopy()
	if proxyPort == 0 {
		return out, nil
	}
	var (
		path    string
		headers []corev1.HTTPHeader
		appPort int32
	)
	timeout := func() {
		if probe.TimeoutSeconds > 1 {
			headers = append(headers, corev1.HTTPHeader{Name: headerTimeout, Value: strconv.Itoa(int(probe.TimeoutSeconds))})
		}
	}
	switch {
	case probe.HTTPGet != nil:
		h := probe.HTTPGet
		appPort = kumaPort(c, h.Port)
		p := h.Path
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		path = fmt.Sprintf("/%d%s", appPort, p)
		renamed := false
		for _, hd := range h.HTTPHeaders {
			if !renamed && hd.Name == "Host" {
				hd = corev1.HTTPHeader{Name: headerHost, Value: hd.Value}
				renamed = true
			}
			headers = append(headers, hd)
		}
		if h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP {
			headers = append(headers, corev1.HTTPHeader{Name: headerScheme, Value: string(h.Scheme)})
		}
		timeout()
	case probe.TCPSocket != nil:
		appPort = kumaPort(c, probe.TCPSocket.Port)
		path = fmt.Sprintf("/tcp/%d", appPort)
		timeout()
	case probe.GRPC != nil:
		appPort = probe.GRPC.Port
		path = fmt.Sprintf("/grpc/%d", appPort)
		timeout()
		if s := probe.GRPC.Service; s != nil && *s != "" {
			headers = append(headers, corev1.HTTPHeader{Name: headerGRPCService, Value: *s})
		}
	default:
		return out, nil
	}
	if appPort == proxyPort {
		return nil, portConflict(c.Name, proxyPort)
	}
	out.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Port:        intstr.FromInt32(proxyPort),
		Path:        path,
		HTTPHeaders: headers,
	}}
	return out, nil
}

func portConflict(container string, port int32) error {
	return fmt.Errorf("container %q: a probe on port %d, the port Kuma reserves for probes, makes Kuma's injector refuse the pod", container, port)
}

// RewriteVirtual predicts Kuma's legacy virtual-probes rewrite of probe, a probe of container c, on
// virtualPort (pkg/plugins/runtime/k8s/webhooks/injector/probes.go, overrideHTTPProbes,
// resolveNamedPort, overrideHTTPProbe; probes/probe.go, KumaProbe.ToVirtual): only an httpGet is
// rewritten, and only its port (to virtualPort) and path ("/P" + path) change; scheme, host and
// headers stay. Other probes are returned unchanged. It returns an error where Kuma's injector
// refuses the pod: the probe's port equals virtualPort.
func RewriteVirtual(c *corev1.Container, probe *corev1.Probe, virtualPort int32) (*corev1.Probe, error) {
	if probe == nil {
		return nil, nil
	}
	out := probe.DeepCopy()
	if probe.HTTPGet == nil {
		return out, nil
	}
	appPort := kumaPort(c, probe.HTTPGet.Port)
	if appPort == virtualPort {
		return nil, portConflict(c.Name, virtualPort)
	}
	p := probe.HTTPGet.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	out.HTTPGet.Port = intstr.FromInt32(virtualPort)
	out.HTTPGet.Path = fmt.Sprintf("/%d%s", appPort, p)
	return out, nil
}

// RewrittenTarget says, in the probes.Probe.Original format, what the kubelet probes after Kuma
// rewrites p onto the application probe proxy on proxyPort: "HTTP :9001/8080/healthz",
// "HTTP :9001/tcp/5432", "HTTP :9001/grpc/9090". The rewritten probe is always plain HTTP without a
// host (see Rewrite). It returns "" for exec probes, which Kuma leaves alone.
func RewrittenTarget(p probes.Probe, proxyPort int32) string {
	port := strconv.Itoa(int(proxyPort))
	switch p.Handler {
	case v1alpha1.HandlerHTTP:
		return probes.DescribeHTTP(corev1.URISchemeHTTP, "", port, fmt.Sprintf("/%d%s", p.Port, originalPath(p.Original)))
	case v1alpha1.HandlerTCP:
		return probes.DescribeHTTP(corev1.URISchemeHTTP, "", port, fmt.Sprintf("/tcp/%d", p.Port))
	case v1alpha1.HandlerGRPC:
		return probes.DescribeHTTP(corev1.URISchemeHTTP, "", port, fmt.Sprintf("/grpc/%d", p.Port))
	}
	return ""
}

// originalPath returns the path of an HTTP probe's Original ("HTTP host:port/path"): everything
// from the first "/" after the port.
func originalPath(original string) string {
	_, rest, _ := strings.Cut(original, " ")
	if i := strings.Index(rest, "/"); i >= 0 {
		return rest[i:]
	}
	return "/"
}

// decoded is an original probe read back from its rewritten form.
type decoded struct {
	handler v1alpha1.ProbeHandler
	port    int32
	// original is in the probes.Probe.Original format.
	original string
}

// decodeProxy reads the original probe back from an httpGet in the application probe proxy's form
// on proxyPort: an integer port equal to proxyPort, scheme HTTP or unset, and a path kuma-dp
// serves. The scheme comes from X-Kuma-Probes-Scheme and the gRPC service from
// X-Kuma-Probes-GRPC-Service; the host is lost, since Kuma's converter drops it. ok is false when
// the probe is not in that form.
func decodeProxy(pr *corev1.Probe, proxyPort int32) (d decoded, ok bool) {
	h := pr.HTTPGet
	if proxyPort <= 0 || h == nil || h.Port.Type != intstr.Int || h.Port.IntVal != proxyPort ||
		(h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP) {
		return decoded{}, false
	}
	header := func(name string) (string, bool) {
		for _, hd := range h.HTTPHeaders {
			if hd.Name == name {
				return hd.Value, true
			}
		}
		return "", false
	}
	if m := proxyTCPGRPCPath.FindStringSubmatch(h.Path); m != nil {
		port, ok := portNumber(m[2])
		if !ok {
			return decoded{}, false
		}
		if m[1] == "tcp" {
			return decoded{handler: v1alpha1.HandlerTCP, port: port, original: probes.DescribeTCP("", strconv.Itoa(int(port)))}, true
		}
		var service *string
		if s, found := header(headerGRPCService); found {
			service = &s
		}
		return decoded{handler: v1alpha1.HandlerGRPC, port: port, original: probes.DescribeGRPC(port, service)}, true
	}
	if m := proxyHTTPPath.FindStringSubmatch(h.Path); m != nil {
		port, ok := portNumber(m[1])
		if !ok {
			return decoded{}, false
		}
		scheme := corev1.URISchemeHTTP
		if s, found := header(headerScheme); found && s != "" {
			scheme = corev1.URIScheme(s)
		}
		return decoded{handler: v1alpha1.HandlerHTTP, port: port, original: probes.DescribeHTTP(scheme, "", strconv.Itoa(int(port)), m[2])}, true
	}
	return decoded{}, false
}

// decodeVirtual reads the original probe back from an httpGet in the virtual probes form on
// virtualPort: an integer port equal to virtualPort and a path "/<port><path>". Virtual probes keep
// scheme and host (probes.go, overrideHTTPProbe), so both come from the probe itself.
func decodeVirtual(pr *corev1.Probe, virtualPort int32) (d decoded, ok bool) {
	h := pr.HTTPGet
	if virtualPort <= 0 || h == nil || h.Port.Type != intstr.Int || h.Port.IntVal != virtualPort {
		return decoded{}, false
	}
	m := proxyHTTPPath.FindStringSubmatch(h.Path)
	if m == nil {
		return decoded{}, false
	}
	port, ok := portNumber(m[1])
	if !ok {
		return decoded{}, false
	}
	return decoded{handler: v1alpha1.HandlerHTTP, port: port, original: probes.DescribeHTTP(h.Scheme, h.Host, strconv.Itoa(int(port)), m[2])}, true
}

// portNumber parses a TCP port from a path segment; kuma-dp answers 503 for anything else.
func portNumber(s string) (int32, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return int32(n), true
}
