package istio

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

func TestReadTemplate(t *testing.T) {
	enabled := map[string]string{"istio-injection": "enabled"}
	template := func(hostNetwork bool, labels, annotations map[string]string) *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
			Spec: corev1.PodSpec{HostNetwork: hostNetwork}}
	}
	tests := []struct {
		name      string
		ns        map[string]string
		template  *corev1.PodTemplateSpec
		injected  bool
		reason    v1alpha1.StatusReason
		rewrite   RewriteSetting
		port      int32
		portError bool
	}{
		{"injected, nothing set", enabled, template(false, nil, nil), true, v1alpha1.StatusReasonNamespaceInjectionEnabled, RewriteUnset, DefaultStatusPort, false},
		{"host network is never injected", enabled, template(true, nil, nil), false, v1alpha1.StatusReasonHostNetwork, RewriteUnset, DefaultStatusPort, false},
		{"host network outside the mesh keeps the injection reason", nil, template(true, nil, nil), false, v1alpha1.StatusReasonNoInjectionLabel, RewriteUnset, DefaultStatusPort, false},
		{"pod opts out", enabled, template(false, map[string]string{"sidecar.istio.io/inject": "false"}, nil), false, v1alpha1.StatusReasonPodInjectionDisabled, RewriteUnset, DefaultStatusPort, false},
		{"rewrite enabled and own status port", enabled, template(false, nil, map[string]string{RewriteAnnotation: "true", StatusPortAnnotation: "15021"}),
			true, v1alpha1.StatusReasonNamespaceInjectionEnabled, RewriteEnabled, 15021, false},
		{"rewrite disabled", enabled, template(false, nil, map[string]string{RewriteAnnotation: "false"}), true, v1alpha1.StatusReasonNamespaceInjectionEnabled, RewriteDisabled, DefaultStatusPort, false},
		{"rewrite invalid", enabled, template(false, nil, map[string]string{RewriteAnnotation: "yes"}), true, v1alpha1.StatusReasonNamespaceInjectionEnabled, RewriteInvalid, DefaultStatusPort, false},
		{"status port invalid", enabled, template(false, nil, map[string]string{StatusPortAnnotation: "http"}), true, v1alpha1.StatusReasonNamespaceInjectionEnabled, RewriteUnset, DefaultStatusPort, true},
		{"status port off", enabled, template(false, nil, map[string]string{StatusPortAnnotation: "0"}), true, v1alpha1.StatusReasonNamespaceInjectionEnabled, RewriteUnset, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := ReadTemplate(tt.ns, tt.template, DefaultStatusPort, IstioVersion{})
			g.Expect(got.Injected).To(Equal(tt.injected))
			g.Expect(got.InjectionReason).To(Equal(tt.reason))
			g.Expect(got.Rewrite).To(Equal(tt.rewrite))
			g.Expect(got.StatusPort).To(Equal(tt.port))
			g.Expect(got.StatusPortErr != nil).To(Equal(tt.portError))
		})
	}
}

func TestNativeSidecar(t *testing.T) {
	tests := []struct {
		annotations map[string]string
		native      bool
		source      NativeSidecarSource
	}{
		{nil, true, NativeSidecarAssumed},
		{map[string]string{NativeSidecarAnnotation: "false"}, false, NativeSidecarFromAnnotation},
		{map[string]string{NativeSidecarAnnotation: "true"}, true, NativeSidecarFromAnnotation},
		// The injection template compares with `ne "false"`.
		{map[string]string{NativeSidecarAnnotation: "False"}, true, NativeSidecarFromAnnotation},
		{map[string]string{NativeSidecarAnnotation: "no"}, true, NativeSidecarFromAnnotation},
	}
	for _, tt := range tests {
		got := ReadTemplate(nil, &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}}, DefaultStatusPort, IstioVersion{})
		NewWithT(t).Expect([]any{got.NativeSidecar, got.NativeSidecarSource}).To(Equal([]any{tt.native, tt.source}), "%v", tt.annotations)
	}

	g := NewWithT(t)
	native, found := NativeSidecarOnPod(&corev1.PodSpec{InitContainers: []corev1.Container{{Name: "istio-proxy"}}, Containers: []corev1.Container{{Name: "app"}}})
	g.Expect([]bool{native, found}).To(Equal([]bool{true, true}))
	native, found = NativeSidecarOnPod(&corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "istio-proxy"}}})
	g.Expect([]bool{native, found}).To(Equal([]bool{false, true}))
	_, found = NativeSidecarOnPod(&corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}})
	g.Expect(found).To(BeFalse())
}

func TestNamespaceVersion(t *testing.T) {
	istiod := func(image, rev string) appsv1.Deployment {
		d := appsv1.Deployment{}
		d.Labels = map[string]string{"app": "istiod"}
		if rev != "" {
			d.Spec.Template.Labels = map[string]string{"istio.io/rev": rev}
		}
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "discovery", Image: image}}
		return d
	}
	proxyPod := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.28.2"}}}}
	bare := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:9.9.9"}}}}
	istiods := []appsv1.Deployment{istiod("docker.io/istio/pilot:1.27.3", "canary"), istiod("docker.io/istio/pilot:1.26.1", "default")}
	tests := []struct {
		name   string
		pods   []*corev1.Pod
		ns     map[string]string
		want   string
		source string
	}{
		{"a live pod's istio-proxy", []*corev1.Pod{bare, proxyPod}, nil, "1.28.2", "istio-proxy image"},
		{"the default revision's istiod", []*corev1.Pod{bare}, nil, "1.26.1", "istiod image"},
		{"the namespace's revision", nil, map[string]string{"istio.io/rev": "canary"}, "1.27.3", "istiod image"},
		{"a revision nobody serves", nil, map[string]string{"istio.io/rev": "gone"}, "unknown", ""},
	}
	for _, tt := range tests {
		got := NamespaceVersion(tt.pods, istiods, tt.ns)
		NewWithT(t).Expect([]string{got.String(), got.Source}).To(Equal([]string{tt.want, tt.source}), tt.name)
	}
	g := NewWithT(t)
	g.Expect(NamespaceVersion(nil, []appsv1.Deployment{istiod("docker.io/istio/pilot:1.24.0", "")}, nil).String()).To(Equal("1.24.0"), "no revision label is the default")
	old := ReadTemplate(nil, &corev1.PodTemplateSpec{}, DefaultStatusPort, IstioVersion{Version: version.MustParseGeneric("1.26.4")})
	g.Expect(old.NativeSidecar).To(BeFalse(), "before Istio 1.27 native sidecars are off by default")
}
