package meshdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

func kumaPod(annotations map[string]string, probe corev1.ProbeHandler) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "nginx",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: probe, TimeoutSeconds: 1},
		}}},
	}
}

var (
	kumaHTTP = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}
	kumaTCP  = corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}
	kumaGRPC = corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 8080}}
)

func modesOf(m v1alpha1.MTLSMode) PortModes { return func(int32) v1alpha1.MTLSMode { return m } }

func TestKumaVerdictRules(t *testing.T) {
	// Kuma's config with the probe proxy and virtual probes both off (golden
	// case 19): probes stay as they are. A pod cannot get there by itself:
	// its kuma.io/application-probe-proxy-port "0" forces virtual probes on
	// (probe.go SetVirtualProbesEnabledAnnotation), even with
	// kuma.io/virtual-probes: disabled.
	configOff := func(o *KumaOptions) { o.ProbeProxyPort, o.VirtualProbesEnabled = 0, false }
	var off map[string]string
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		probe       corev1.ProbeHandler
		opts        func(*KumaOptions)
		mode        v1alpha1.MTLSMode
		want        ProbeVerdict
		rule        string
	}{
		{name: "HTTP via the probe proxy under STRICT", probe: kumaHTTP, mode: v1alpha1.MTLSStrict,
			want: VerdictPass, rule: "kuma-redirected-probe-bypasses-mtls"},
		{name: "gRPC via the probe proxy under STRICT", probe: kumaGRPC, mode: v1alpha1.MTLSStrict,
			want: VerdictPass, rule: "kuma-redirected-probe-bypasses-mtls"},
		{name: "TCP via the probe proxy under STRICT", probe: kumaTCP, mode: v1alpha1.MTLSStrict,
			want: VerdictPass, rule: "kuma-redirected-probe-bypasses-mtls"},
		{name: "plain HTTP under STRICT is reset", annotations: off, opts: configOff, probe: kumaHTTP, mode: v1alpha1.MTLSStrict,
			want: VerdictReset, rule: "kuma-strict-mtls-resets-direct-probe"},
		{name: "plain gRPC under STRICT is reset", annotations: off, opts: configOff, probe: kumaGRPC, mode: v1alpha1.MTLSStrict,
			want: VerdictReset, rule: "kuma-strict-mtls-resets-direct-probe"},
		{name: "plain TCP under STRICT: Envoy answers", annotations: off, opts: configOff, probe: kumaTCP, mode: v1alpha1.MTLSStrict,
			want: VerdictPass, rule: "kuma-sidecar-tcp-looks-open"},
		{name: "plain HTTP under PERMISSIVE reaches the app", annotations: off, opts: configOff, probe: kumaHTTP, mode: v1alpha1.MTLSPermissive,
			want: VerdictPass},
		{name: "plain HTTP without mTLS reaches the app", annotations: off, opts: configOff, probe: kumaHTTP, mode: v1alpha1.MTLSDisable,
			want: VerdictPass},
		{name: "proxy \"0\" and virtual probes disabled on the pod: still virtual probes",
			annotations: map[string]string{KumaProbeProxyPortAnnotation: "0", KumaVirtualProbesAnnotation: "disabled"},
			probe:       kumaHTTP, mode: v1alpha1.MTLSStrict, want: VerdictPass, rule: "kuma-redirected-probe-bypasses-mtls"},
		{name: "proxy off on the pod: virtual probes under STRICT",
			annotations: map[string]string{KumaProbeProxyPortAnnotation: "0"}, probe: kumaHTTP, mode: v1alpha1.MTLSStrict,
			want: VerdictPass, rule: "kuma-redirected-probe-bypasses-mtls"},
		{name: "plain HTTP on an excluded port under STRICT",
			annotations: map[string]string{KumaExcludeInboundPortsAnnotation: "8080"}, opts: configOff,
			probe: kumaHTTP, mode: v1alpha1.MTLSStrict, want: VerdictPass},
		{name: "proxy off in the config, custom port on the pod", opts: func(o *KumaOptions) { o.ProbeProxyPort = 0 },
			annotations: map[string]string{KumaProbeProxyPortAnnotation: "19001"}, probe: kumaHTTP, mode: v1alpha1.MTLSStrict,
			want: VerdictPass, rule: "kuma-redirected-probe-bypasses-mtls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			o := DefaultKumaOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			pod := kumaPod(tc.annotations, *tc.probe.DeepCopy())
			g.Expect(KumaInject(pod, "default", o)).To(Succeed())
			j := Judge(pod, 0, modesOf(tc.mode))
			g.Expect(j.Verdict).To(Equal(tc.want), j.Reason())
			g.Expect(j.Rule).To(Equal(tc.rule), j.Reason())
		})
	}
}

func TestKumaRewriteDetails(t *testing.T) {
	g := NewWithT(t)
	svc := "ready"
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app",
		ReadinessProbe: &corev1.Probe{TimeoutSeconds: 3, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "healthz?x=1", Port: intstr.FromInt32(8443), Scheme: corev1.URISchemeHTTPS,
			HTTPHeaders: []corev1.HTTPHeader{{Name: "A", Value: "1"}, {Name: "Host", Value: "h"}, {Name: "B", Value: "2"}},
		}}},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: &svc}}},
		StartupProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
	}}}}
	g.Expect(KumaRewriteProbes(&pod.Spec, 9001)).To(Succeed())
	c := pod.Spec.Containers[0]
	g.Expect(c.ReadinessProbe.HTTPGet).To(Equal(&corev1.HTTPGetAction{
		Path: "/8443/healthz?x=1", Port: intstr.FromInt32(9001),
		HTTPHeaders: []corev1.HTTPHeader{{Name: "A", Value: "1"}, {Name: KumaProbeHeaderHost, Value: "h"}, {Name: "B", Value: "2"},
			{Name: KumaProbeHeaderScheme, Value: "HTTPS"}, {Name: KumaProbeHeaderTimeout, Value: "3"}},
	}))
	g.Expect(c.LivenessProbe.GRPC).To(BeNil())
	g.Expect(c.LivenessProbe.HTTPGet).To(Equal(&corev1.HTTPGetAction{
		Path: "/grpc/9090", Port: intstr.FromInt32(9001),
		HTTPHeaders: []corev1.HTTPHeader{{Name: KumaProbeHeaderGRPCService, Value: "ready"}},
	}))
	g.Expect(c.StartupProbe.Exec).NotTo(BeNil(), "exec probes stay")

	// A probe on the proxy port is refused; a gateway pod cannot ask for the proxy.
	bad := kumaPod(nil, corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9001)}})
	g.Expect(KumaInject(bad, "default", DefaultKumaOptions())).To(MatchError(ContainSubstring("reserved")))
	gw := kumaPod(map[string]string{KumaGatewayAnnotation: "enabled", KumaProbeProxyPortAnnotation: "9001"}, kumaHTTP)
	g.Expect(KumaInject(gw, "default", DefaultKumaOptions())).To(MatchError(ContainSubstring("gateway")))
	gw = kumaPod(map[string]string{KumaGatewayAnnotation: "enabled"}, kumaHTTP)
	g.Expect(KumaInject(gw, "default", DefaultKumaOptions())).To(Succeed())
	g.Expect(gw.Annotations).To(HaveKeyWithValue(KumaProbeProxyPortAnnotation, "0"))
	g.Expect(gw.Spec.Containers[1].ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromString("http")), "gateway probes untouched")
}

func TestKumaInjectionWanted(t *testing.T) {
	g := NewWithT(t)
	o := DefaultKumaOptions()
	on := map[string]string{KumaSidecarInjectionLabel: "enabled"}
	pod := func(labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	}
	for _, tc := range []struct {
		ns, pod map[string]string
		want    bool
	}{
		{ns: on, want: true},
		{ns: nil, want: false},
		{ns: nil, pod: map[string]string{KumaSidecarInjectionLabel: "true"}, want: true},
		{ns: on, pod: map[string]string{KumaSidecarInjectionLabel: "disabled"}, want: false},
		{ns: on, pod: map[string]string{"openshift.io/deployer-pod-for.name": "x"}, want: false},
	} {
		got, err := KumaInjectionWanted(tc.ns, pod(tc.pod), o)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(tc.want), "ns %v pod %v", tc.ns, tc.pod)
	}
	_, err := KumaInjectionWanted(map[string]string{KumaSidecarInjectionLabel: "maybe"}, pod(nil), o)
	g.Expect(err).To(HaveOccurred())
}

func unstr(obj map[string]any) unstructured.Unstructured {
	return unstructured.Unstructured{Object: obj}
}

func meshTLS(ns, name string, targetRef map[string]any, mode string) unstructured.Unstructured {
	spec := map[string]any{"rules": []any{map[string]any{"default": map[string]any{"mode": mode}}}}
	if targetRef != nil {
		spec["targetRef"] = targetRef
	}
	return unstr(map[string]any{"apiVersion": "kuma.io/v1alpha1", "kind": "MeshTLS",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec})
}

func TestKumaMeshModes(t *testing.T) {
	g := NewWithT(t)
	mesh := func(spec map[string]any) *unstructured.Unstructured {
		u := unstr(map[string]any{"spec": spec})
		return &u
	}
	g.Expect(KumaMeshMode(mesh(map[string]any{}))).To(Equal(v1alpha1.MTLSDisable))
	g.Expect(KumaMeshMode(mesh(map[string]any{"mtls": map[string]any{"enabledBackend": "ca",
		"backends": []any{map[string]any{"name": "ca", "type": "builtin"}}}}))).To(Equal(v1alpha1.MTLSStrict))
	g.Expect(KumaMeshMode(mesh(map[string]any{"mtls": map[string]any{"enabledBackend": "ca",
		"backends": []any{map[string]any{"name": "ca", "type": "builtin", "mode": "PERMISSIVE"}}}}))).To(Equal(v1alpha1.MTLSPermissive))

	labels := map[string]string{"app": "web"}
	meshWide := meshTLS("kuma-system", "all", nil, "Permissive")
	subset := meshTLS("shop", "web", map[string]any{"kind": "MeshSubset", "tags": map[string]any{"app": "web"}}, "Strict")
	other := meshTLS("shop", "other", map[string]any{"kind": "MeshSubset", "tags": map[string]any{"app": "db"}}, "Strict")
	dp := meshTLS("shop", "dp", map[string]any{"kind": "Dataplane", "labels": map[string]any{"app": "web"}}, "Permissive")
	elsewhere := meshTLS("other-ns", "z", nil, "Strict")
	mode := func(ps ...unstructured.Unstructured) v1alpha1.MTLSMode {
		return KumaMeshTLSMode(ps, "kuma-system", "shop", "default", labels)
	}
	g.Expect(mode()).To(BeEmpty())
	g.Expect(mode(meshWide)).To(Equal(v1alpha1.MTLSPermissive))
	g.Expect(mode(meshWide, subset)).To(Equal(v1alpha1.MTLSStrict), "MeshSubset beats Mesh")
	g.Expect(mode(subset, meshWide)).To(Equal(v1alpha1.MTLSStrict), "whatever the listing order")
	g.Expect(mode(meshWide, other)).To(Equal(v1alpha1.MTLSPermissive), "tags must match")
	g.Expect(mode(dp, subset)).To(Equal(v1alpha1.MTLSStrict), "MeshSubset beats Dataplane (targetref.go order)")
	g.Expect(mode(meshWide, dp)).To(Equal(v1alpha1.MTLSPermissive))
	g.Expect(mode(elsewhere)).To(BeEmpty(), "a namespaced policy selects only its namespace")
	a := meshTLS("shop", "a", nil, "Strict")
	b := meshTLS("shop", "b", nil, "Permissive")
	g.Expect(mode(b, a)).To(Equal(v1alpha1.MTLSStrict), "same specificity: the alphabetically first name wins")
	sys := meshTLS("kuma-system", "a", nil, "Permissive")
	g.Expect(mode(b, sys)).To(Equal(v1alpha1.MTLSPermissive))
	g.Expect(mode(meshTLS("shop", "z", nil, "Strict"), sys)).To(Equal(v1alpha1.MTLSStrict), "namespaced after system")
	otherMesh := meshTLS("shop", "m", nil, "Permissive")
	otherMesh.SetLabels(map[string]string{KumaMeshLabel: "payments"})
	g.Expect(mode(a, otherMesh)).To(Equal(v1alpha1.MTLSStrict), "a policy of another mesh does not apply")
}

// TestKumaVerdictLayer runs a pod through Kuma's verdict layer after an
// earlier layer (Istio's catch-all double) already judged it.
func TestKumaVerdictLayer(t *testing.T) {
	g := NewWithT(t)
	o := DefaultKumaOptions()
	o.ProbeProxyPort = 0 // probes untouched unless the pod asks
	layer := &VerdictWebhook{
		Injector: &KumaWebhook{Options: o, NamespaceLabels: func(context.Context, string) (map[string]string, error) {
			return map[string]string{KumaSidecarInjectionLabel: "enabled"}, nil
		}},
		Path: KumaWebhookPath, Source: "kuma",
		Modes: func(context.Context, string, map[string]string) (PortModes, error) {
			return modesOf(v1alpha1.MTLSStrict), nil
		},
	}
	srv := httptest.NewServer(layer)
	defer srv.Close()
	admit := func(annotations map[string]string) *corev1.Pod {
		pod := kumaPod(annotations, kumaHTTP)
		raw, err := json.Marshal(pod)
		g.Expect(err).NotTo(HaveOccurred())
		body, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "1", Namespace: "shop", Operation: admissionv1.Create,
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Object: runtime.RawExtension{Raw: raw}},
		})
		g.Expect(err).NotTo(HaveOccurred())
		r, err := http.Post(srv.URL+KumaWebhookPath, "application/json", bytes.NewReader(body))
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = r.Body.Close() }()
		var review admissionv1.AdmissionReview
		g.Expect(json.NewDecoder(r.Body).Decode(&review)).To(Succeed())
		g.Expect(review.Response.Allowed).To(BeTrue(), "%+v", review.Response.Result)
		p, err := jsonpatchapply.DecodePatch(review.Response.Patch)
		g.Expect(err).NotTo(HaveOccurred())
		out, err := p.Apply(raw)
		g.Expect(err).NotTo(HaveOccurred())
		var got corev1.Pod
		g.Expect(json.Unmarshal(out, &got)).To(Succeed())
		return &got
	}
	off := map[string]string{}
	got := admit(off)
	g.Expect(got.Annotations).To(HaveKeyWithValue(VerdictAnnotation, string(VerdictReset)))
	g.Expect(got.Annotations).To(HaveKeyWithValue(VerdictSourceAnnotation, "kuma"))

	// An earlier layer's "pass" (it saw no sidecar) is judged again.
	earlier := map[string]string{VerdictAnnotation: "pass", VerdictSourceAnnotation: "meshdouble"}
	for k, v := range off {
		earlier[k] = v
	}
	g.Expect(admit(earlier).Annotations).To(HaveKeyWithValue(VerdictAnnotation, string(VerdictReset)))
	// The author's forced verdict stays.
	forced := map[string]string{VerdictAnnotation: "pass"}
	for k, v := range off {
		forced[k] = v
	}
	g.Expect(admit(forced).Annotations).To(And(HaveKeyWithValue(VerdictAnnotation, "pass"), Not(HaveKey(VerdictSourceAnnotation))))
	// Redirected when the pod asks for the probe proxy: passes.
	g.Expect(admit(map[string]string{KumaProbeProxyPortAnnotation: "9001"}).Annotations).
		To(HaveKeyWithValue(VerdictAnnotation, string(VerdictPass)))
}
