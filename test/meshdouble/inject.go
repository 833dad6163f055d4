package meshdouble

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

const (
	// DefaultProxyImage is the istio-proxy image used when Config.ProxyImage
	// is empty.
	DefaultProxyImage = "docker.io/istio/proxyv2:1.30.3"
	// StatusAnnotation is the annotation Istio's injector sets on every pod it
	// injects (annotation.SidecarStatus in istio.io/api).
	StatusAnnotation = "sidecar.istio.io/status"

	// proxyHealthPort is the port of the sidecar's own readiness endpoint
	// (/healthz/ready), which Istio never rewrites.
	proxyHealthPort = 15021
	// proxyPromPort is the Envoy Prometheus port the injection template
	// declares on istio-proxy.
	proxyPromPort = 15090
)

// Config is the mesh-wide injector configuration the double simulates.
type Config struct {
	// RewriteAppHTTPProbe is Istio's values.sidecarInjectorWebhook.rewriteAppHTTPProbe,
	// the mesh default used when a pod's rewriteAppHTTPProbers annotation is
	// absent or not a strconv.ParseBool value. Istio's default is true; pass
	// false to model a mesh where the rewrite is opt-in (like ASM).
	RewriteAppHTTPProbe bool
	// StatusPort is the mesh defaultConfig.statusPort; 0 means
	// istiomesh.DefaultStatusPort (15020).
	StatusPort int32
	// ProxyImage is the image of the istio-proxy container the double adds;
	// empty means DefaultProxyImage.
	ProxyImage string
}

func (c Config) meshStatusPort() int32 {
	if c.StatusPort == 0 {
		return istiomesh.DefaultStatusPort
	}
	return c.StatusPort
}

func (c Config) proxyImage() string {
	if c.ProxyImage == "" {
		return DefaultProxyImage
	}
	return c.ProxyImage
}

// Inject mutates pod the way Istio's sidecar injector does, for the parts this
// project depends on (see the package documentation):
//
//   - it adds an istio-proxy container to spec.containers unless a container
//     of that name exists in spec.containers or spec.initContainers;
//   - it sets the sidecar.istio.io/status annotation unless present;
//   - when the pod's sidecar.istio.io/rewriteAppHTTPProbers annotation, if
//     strconv.ParseBool accepts it, or else cfg.RewriteAppHTTPProbe says so,
//     it rewrites the probes and lifecycle hooks of every other container and
//     init container to the status port (the status.sidecar.istio.io/port
//     annotation, else cfg.StatusPort) and sets ISTIO_KUBE_APP_PROBERS on
//     istio-proxy, merged with an existing value (existing entries win, as in
//     Istio's mergeOrAppendProbers).
//
// It returns whether the rewrite was applied (enabled for this pod), even if
// the pod has no probe to rewrite. An invalid status.sidecar.istio.io/port
// annotation is an error and leaves pod unchanged: Istio's injector fails on
// it and its webhook rejects the pod. An existing ISTIO_KUBE_APP_PROBERS that
// is not a JSON object is an error too (Istio would log it and keep the old
// value); pod may then already carry the added sidecar.
//
// Calling Inject again on its result changes nothing.
func Inject(pod *corev1.Pod, cfg Config) (rewritten bool, err error) {
	if pod == nil {
		return false, errors.New("meshdouble: nil pod")
	}
	meshPort := cfg.meshStatusPort()
	target, err := istiomesh.StatusPort(pod.Annotations, meshPort)
	if err != nil {
		return false, fmt.Errorf("meshdouble: injection failed: %w", err)
	}

	sidecar := findSidecar(&pod.Spec)
	if sidecar == nil {
		pod.Spec.Containers = append(pod.Spec.Containers, proxyContainer(cfg.proxyImage(), target))
		sidecar = &pod.Spec.Containers[len(pod.Spec.Containers)-1]
	}
	if _, ok := pod.Annotations[StatusAnnotation]; !ok {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[StatusAnnotation] = sidecarStatus(&pod.Spec)
	}

	if !shouldRewriteAppHTTPProbers(pod.Annotations, cfg.RewriteAppHTTPProbe) {
		return false, nil
	}
	// As in Istio's applyRewrite: the document is built with the MESH status
	// port (used only to skip probes that already point at it), the kubelet
	// probes are rewritten to the pod's effective status port.
	probers, err := dumpAppProbers(&pod.Spec, meshPort)
	if err != nil {
		return false, err
	}
	if probers != "" {
		env, err := mergeProbers(sidecar.Env, probers)
		if err != nil {
			return false, err
		}
		sidecar.Env = env
	}
	patchRewriteProbe(&pod.Spec, target)
	return true, nil
}

// RewriteProbes is the pure core of the double: it rewrites the probes and
// lifecycle hooks of every container and init container of spec except
// istio-proxy in place to statusPort, and returns the ISTIO_KUBE_APP_PROBERS
// document describing the originals ("" when there is none; Istio never
// writes "{}"). Probes whose port already equals statusPort are left out of
// the document. It does not touch the istio-proxy container or its env.
func RewriteProbes(spec *corev1.PodSpec, statusPort int32) (string, error) {
	if spec == nil {
		return "", errors.New("meshdouble: nil pod spec")
	}
	probers, err := dumpAppProbers(spec, statusPort)
	if err != nil {
		return "", err
	}
	patchRewriteProbe(spec, statusPort)
	return probers, nil
}

// shouldRewriteAppHTTPProbers is Istio's ShouldRewriteAppHTTPProbers: the
// pod annotation decides when strconv.ParseBool accepts it, else the mesh
// default. Deliberately not istiomesh.ReadRewriteSetting, which is operator logic
// the double is meant to check.
func shouldRewriteAppHTTPProbers(annotations map[string]string, meshDefault bool) bool {
	if v, ok := annotations[istiomesh.RewriteAnnotation]; ok {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return meshDefault
}

// findSidecar is Istio's FindSidecar: the first istio-proxy in containers,
// else in initContainers (native sidecar).
func findSidecar(spec *corev1.PodSpec) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == istiomesh.ProxyContainerName {
			return &spec.Containers[i]
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == istiomesh.ProxyContainerName {
			return &spec.InitContainers[i]
		}
	}
	return nil
}

// proxyContainer is a deliberately small istio-proxy: Istio's template adds
// much more (resources, security context, volume mounts, a startup probe and
// ~20 env vars), none of which this project reads.
func proxyContainer(image string, statusPort int32) corev1.Container {
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: path},
		}}
	}
	c := corev1.Container{
		Name:  istiomesh.ProxyContainerName,
		Image: image,
		Args:  []string{"proxy", "sidecar"},
		Ports: []corev1.ContainerPort{
			{Name: "http-envoy-prom", ContainerPort: proxyPromPort, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("INSTANCE_IP", "status.podIP"),
		},
	}
	// The injection template drops the sidecar's readiness probe when the
	// status port annotation is "0".
	if statusPort != 0 {
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz/ready",
				Port: intstr.FromInt32(proxyHealthPort),
			}},
			TimeoutSeconds:   3,
			PeriodSeconds:    15,
			FailureThreshold: 4,
		}
	}
	return c
}

// sidecarStatus is a small version of the JSON Istio writes to
// sidecar.istio.io/status (SidecarInjectionStatus).
func sidecarStatus(spec *corev1.PodSpec) string {
	type status struct {
		InitContainers   []string `json:"initContainers"`
		Containers       []string `json:"containers"`
		Volumes          []string `json:"volumes"`
		ImagePullSecrets []string `json:"imagePullSecrets"`
		Revision         string   `json:"revision"`
	}
	s := status{Revision: "default"}
	for _, c := range spec.InitContainers {
		if c.Name == istiomesh.ProxyContainerName {
			s.InitContainers = append(s.InitContainers, c.Name)
		}
	}
	for _, c := range spec.Containers {
		if c.Name == istiomesh.ProxyContainerName {
			s.Containers = append(s.Containers, c.Name)
		}
	}
	b, err := json.Marshal(s)
	if err != nil { // cannot happen for this type
		panic(err)
	}
	return string(b)
}

// proberURLs is Istio's status.FormatProberURL, written out here rather than
// taken from istiomesh.ProberPath so that the double stays independent evidence.
type proberURLs struct {
	readyz, livez, startupz, prestopz, poststartz string
}

func formatProberURL(container string) proberURLs {
	return proberURLs{
		readyz:     "/app-health/" + container + "/readyz",
		livez:      "/app-health/" + container + "/livez",
		startupz:   "/app-health/" + container + "/startupz",
		prestopz:   "/app-lifecycle/" + container + "/prestopz",
		poststartz: "/app-lifecycle/" + container + "/poststartz",
	}
}

// prober is one ISTIO_KUBE_APP_PROBERS entry, Istio's inject.Prober.
type prober struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

// probeToProber is kubeProbeToInternalProber, on deep copies so that the
// caller's spec is not touched (Istio shares the pointers, which makes no
// observable difference because the probes are rewritten afterwards).
func probeToProber(p *corev1.Probe) *prober {
	switch {
	case p == nil:
		return nil
	case p.HTTPGet != nil:
		return &prober{HTTPGet: p.HTTPGet.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	case p.TCPSocket != nil:
		return &prober{TCPSocket: p.TCPSocket.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	case p.GRPC != nil:
		return &prober{GRPC: p.GRPC.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	}
	return nil // exec: not rewritten
}

// handlerToProber is kubeLifecycleHandlerToInternalProber: no timeout.
func handlerToProber(h *corev1.LifecycleHandler) *prober {
	switch {
	case h == nil:
		return nil
	case h.HTTPGet != nil:
		return &prober{HTTPGet: h.HTTPGet.DeepCopy()}
	case h.TCPSocket != nil:
		return &prober{TCPSocket: h.TCPSocket.DeepCopy()}
	}
	return nil // exec, sleep: not rewritten
}

// dumpAppProbers is Istio's DumpAppProbers: the JSON document of the original
// probes of every container and init container except istio-proxy, keyed by
// prober URL. A named port is resolved through the same container's ports and
// the entry is dropped when the name is not declared there; an integer port
// equal to skipPort (the mesh status port) is taken as already rewritten and
// dropped; gRPC entries are kept as they are. No entries gives "".
func dumpAppProbers(spec *corev1.PodSpec, skipPort int32) (string, error) {
	out := map[string]*prober{}
	for _, c := range allContainers(spec) {
		if c.Name == istiomesh.ProxyContainerName {
			continue
		}
		portMap := map[string]int32{}
		for _, p := range c.Ports {
			if p.Name != "" {
				portMap[p.Name] = p.ContainerPort
			}
		}
		resolve := func(p *prober) *prober {
			if p == nil {
				return nil
			}
			if p.GRPC != nil {
				return p // gRPC ports are always integers
			}
			var port *intstr.IntOrString
			switch {
			case p.HTTPGet != nil:
				port = &p.HTTPGet.Port
			case p.TCPSocket != nil:
				port = &p.TCPSocket.Port
			default:
				return nil
			}
			if port.Type == intstr.String {
				n, ok := portMap[port.StrVal]
				if !ok {
					return nil
				}
				*port = intstr.FromInt32(n)
			} else if port.IntVal == skipPort {
				return nil // already rewritten
			}
			return p
		}
		urls := formatProberURL(c.Name)
		add := func(url string, p *prober) {
			if p = resolve(p); p != nil {
				out[url] = p
			}
		}
		add(urls.readyz, probeToProber(c.ReadinessProbe))
		add(urls.livez, probeToProber(c.LivenessProbe))
		add(urls.startupz, probeToProber(c.StartupProbe))
		if c.Lifecycle != nil {
			add(urls.prestopz, handlerToProber(c.Lifecycle.PreStop))
			add(urls.poststartz, handlerToProber(c.Lifecycle.PostStart))
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("meshdouble: serialize app probers: %w", err)
	}
	return string(b), nil
}

// allContainers is Istio's allContainers: init containers, then containers.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	all := make([]corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	all = append(all, spec.InitContainers...)
	return append(all, spec.Containers...)
}

// mergeProbers sets ISTIO_KUBE_APP_PROBERS in env to newProbers, merged with
// an existing value: entries already present win, as in Istio's
// mergeOrAppendProbers. Without an existing variable it appends one.
func mergeProbers(env []corev1.EnvVar, newProbers string) ([]corev1.EnvVar, error) {
	for i := range env {
		if env[i].Name != istiomesh.KubeAppProbersEnv {
			continue
		}
		merged := map[string]*prober{}
		if err := json.Unmarshal([]byte(newProbers), &merged); err != nil {
			return nil, fmt.Errorf("meshdouble: new %s: %w", istiomesh.KubeAppProbersEnv, err)
		}
		if env[i].Value != "" {
			existing := map[string]*prober{}
			if err := json.Unmarshal([]byte(env[i].Value), &existing); err != nil {
				return nil, fmt.Errorf("meshdouble: existing %s on %s is not a JSON object: %w",
					istiomesh.KubeAppProbersEnv, istiomesh.ProxyContainerName, err)
			}
			for k, v := range existing {
				merged[k] = v
			}
		}
		b, err := json.Marshal(merged)
		if err != nil {
			return nil, fmt.Errorf("meshdouble: serialize merged app probers: %w", err)
		}
		out := append([]corev1.EnvVar(nil), env...)
		out[i] = corev1.EnvVar{Name: istiomesh.KubeAppProbersEnv, Value: string(b)}
		return out, nil
	}
	return append(env, corev1.EnvVar{Name: istiomesh.KubeAppProbersEnv, Value: newProbers}), nil
}

// patchRewriteProbe is Istio's patchRewriteProbe with the status port already
// resolved: every container and init container except istio-proxy.
func patchRewriteProbe(spec *corev1.PodSpec, statusPort int32) {
	for i := range spec.Containers {
		if spec.Containers[i].Name != istiomesh.ProxyContainerName {
			convertProbes(&spec.Containers[i], statusPort)
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name != istiomesh.ProxyContainerName {
			convertProbes(&spec.InitContainers[i], statusPort)
		}
	}
}

// convertProbes is Istio's convertProbe.
func convertProbes(c *corev1.Container, statusPort int32) {
	urls := formatProberURL(c.Name)
	if p := convertAppProber(c.ReadinessProbe, urls.readyz, statusPort); p != nil {
		c.ReadinessProbe = p
	}
	if p := convertAppProber(c.LivenessProbe, urls.livez, statusPort); p != nil {
		c.LivenessProbe = p
	}
	if p := convertAppProber(c.StartupProbe, urls.startupz, statusPort); p != nil {
		c.StartupProbe = p
	}
	if c.Lifecycle != nil {
		lc := c.Lifecycle.DeepCopy()
		if h := convertAppLifecycleHandler(lc.PreStop, urls.prestopz, statusPort); h != nil {
			lc.PreStop = h
		}
		if h := convertAppLifecycleHandler(lc.PostStart, urls.poststartz, statusPort); h != nil {
			lc.PostStart = h
		}
		c.Lifecycle = lc
	}
}

// convertAppProber is Istio's convertAppProber: a copy of the probe aimed at
// the agent, or nil when the probe is not rewritten (nil or exec).
func convertAppProber(probe *corev1.Probe, url string, statusPort int32) *corev1.Probe {
	if probe == nil {
		return nil
	}
	p := probe.DeepCopy()
	switch {
	case p.HTTPGet != nil:
	case p.TCPSocket != nil:
		// The sidecar intercepts all TCP connections: the agent dials instead.
		p.HTTPGet = &corev1.HTTPGetAction{}
		p.TCPSocket = nil
	case p.GRPC != nil:
		// Kubelet -> HTTP -> pilot-agent -> gRPC -> application.
		p.HTTPGet = &corev1.HTTPGetAction{}
		p.GRPC = nil
	default:
		return nil
	}
	rewriteHTTPGetAction(p.HTTPGet, url, statusPort)
	return p
}

// convertAppLifecycleHandler is Istio's convertAppLifecycleHandler.
func convertAppLifecycleHandler(handler *corev1.LifecycleHandler, url string, statusPort int32) *corev1.LifecycleHandler {
	if handler == nil {
		return nil
	}
	h := handler.DeepCopy()
	switch {
	case h.HTTPGet != nil:
	case h.TCPSocket != nil:
		h.HTTPGet = &corev1.HTTPGetAction{}
		h.TCPSocket = nil
	default:
		return nil
	}
	rewriteHTTPGetAction(h.HTTPGet, url, statusPort)
	return h
}

// rewriteHTTPGetAction is Istio's rewriteHTTPGetAction: port and path change,
// HTTPS becomes HTTP (kubelet -> HTTP -> agent -> HTTPS -> app), everything
// else (host, headers) is kept.
func rewriteHTTPGetAction(a *corev1.HTTPGetAction, url string, statusPort int32) {
	a.Port = intstr.FromInt32(statusPort)
	a.Path = url
	if a.Scheme == corev1.URISchemeHTTPS {
		a.Scheme = corev1.URISchemeHTTP
	}
}
