package kuma

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
)

func TestViewReadRedirect(t *testing.T) {
	v := &View{}
	tests := []struct {
		annotations map[string]string
		want        mesh.Redirect
	}{
		{nil, mesh.Redirect{State: mesh.RedirectUnset, Annotation: ProbeProxyPortAnnotation}},
		{map[string]string{ProbeProxyPortAnnotation: "9001"}, mesh.Redirect{State: mesh.RedirectEnabled, Annotation: ProbeProxyPortAnnotation, Raw: "9001", Port: 9001}},
		{map[string]string{ProbeProxyPortAnnotation: "0"}, mesh.Redirect{State: mesh.RedirectDisabled, Annotation: ProbeProxyPortAnnotation, Raw: "0"}},
		{map[string]string{ProbeProxyPortAnnotation: "nine"}, mesh.Redirect{State: mesh.RedirectInvalid, Annotation: ProbeProxyPortAnnotation, Raw: "nine"}},
		{map[string]string{ProbeProxyPortAnnotation: "70000"}, mesh.Redirect{State: mesh.RedirectInvalid, Annotation: ProbeProxyPortAnnotation, Raw: "70000"}},
	}
	for _, tt := range tests {
		NewWithT(t).Expect(v.ReadRedirect(tt.annotations)).To(Equal(tt.want), "%v", tt.annotations)
	}
}

func TestViewRedirectAnnotation(t *testing.T) {
	g := NewWithT(t)
	v := &View{}
	g.Expect(v.RedirectAnnotation(v1alpha1.ProbeRedirectPolicySpec{})).To(Equal(mesh.Annotation{Key: ProbeProxyPortAnnotation, Value: "9001"}))
	g.Expect(v.RedirectAnnotation(v1alpha1.ProbeRedirectPolicySpec{Kuma: v1alpha1.KumaSettings{ApplicationProbeProxyPort: 9555}})).
		To(Equal(mesh.Annotation{Key: ProbeProxyPortAnnotation, Value: "9555"}))
}

func TestViewNamespace(t *testing.T) {
	strict := Mesh{Name: "default", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSStrict}
	permissive := Mesh{Name: "payments", EnabledBackend: "ca-1", Mode: v1alpha1.MTLSPermissive}
	resolver := NewResolver([]Mesh{strict, permissive}, nil, DefaultSystemNamespace)
	tests := []struct {
		name     string
		labels   map[string]string
		modes    *Resolver
		injects  bool
		wantMode v1alpha1.MTLSMode
	}{
		{"no Kuma installed", map[string]string{SidecarInjectionLabel: "enabled"}, nil, true, v1alpha1.MTLSDisable},
		{"the default Mesh", map[string]string{SidecarInjectionLabel: "enabled"}, resolver, true, v1alpha1.MTLSStrict},
		{"a named Mesh", map[string]string{SidecarInjectionLabel: "true", MeshLabel: "payments"}, resolver, true, v1alpha1.MTLSPermissive},
		{"injection off", map[string]string{SidecarInjectionLabel: "disabled"}, resolver, false, v1alpha1.MTLSStrict},
		{"no label", nil, resolver, false, v1alpha1.MTLSStrict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			v := &View{Namespace: "shop", NamespaceLabels: tt.labels, Modes: tt.modes}
			g.Expect(v.InjectsNamespace()).To(Equal(tt.injects))
			g.Expect(v.NamespaceMode()).To(Equal(tt.wantMode))
		})
	}
}

// TestViewClaim checks that the live pods' kuma-sidecar is the strongest evidence, and that a
// namespace that only mentions Kuma's label still claims its workloads weakly.
func TestViewClaim(t *testing.T) {
	template := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	withSidecar := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Annotations: map[string]string{ProbeProxyPortAnnotation: "9001"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: ProxyContainerName}}}}
	tests := []struct {
		name     string
		labels   map[string]string
		pods     []*corev1.Pod
		claim    mesh.Claim
		injected bool
		reason   v1alpha1.StatusReason
	}{
		{"nothing names Kuma", nil, nil, mesh.ClaimNone, false, v1alpha1.StatusReasonNoInjectionLabel},
		{"injection off in the namespace", map[string]string{SidecarInjectionLabel: "disabled"}, nil, mesh.ClaimMentioned, false, v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{"injected by the rules", map[string]string{SidecarInjectionLabel: "enabled"}, nil, mesh.ClaimInjected, true, v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{"kuma-sidecar on the pods, labels removed since", nil, []*corev1.Pod{withSidecar}, mesh.ClaimSidecarOnPods, true, v1alpha1.StatusReasonSidecarOnLivePods},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := (&View{Namespace: "shop", NamespaceLabels: tt.labels}).Observe(template, tt.pods, v1alpha1.ProbeRedirectPolicySpec{})
			g.Expect(w.Claimed).To(Equal(tt.claim))
			g.Expect(w.Injected).To(Equal(tt.injected))
			g.Expect(w.InjectionReason).To(Equal(tt.reason))
			g.Expect(w.Mesh).To(Equal(v1alpha1.MeshKuma))
		})
	}
}
