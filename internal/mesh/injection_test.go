package mesh

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

func TestInjection(t *testing.T) {
	type m = map[string]string
	tests := []struct {
		name       string
		ns, labels m
		annots     m
		want       bool
		wantReason v1alpha1.StatusReason
	}{
		{name: "nothing set", want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "namespace enabled", ns: m{"istio-injection": "enabled"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "namespace disabled", ns: m{"istio-injection": "disabled"}, want: false, wantReason: v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{name: "namespace disabled beats pod label true", ns: m{"istio-injection": "disabled"}, labels: m{"sidecar.istio.io/inject": "true"}, want: false, wantReason: v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{name: "namespace disabled beats namespace revision", ns: m{"istio-injection": "disabled", "istio.io/rev": "canary"}, want: false, wantReason: v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{name: "namespace label with another value matches no webhook", ns: m{"istio-injection": "true"}, labels: m{"sidecar.istio.io/inject": "true"}, want: false, wantReason: v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{name: "namespace revision", ns: m{"istio.io/rev": "canary"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceRevision},
		{name: "namespace enabled wins over namespace revision", ns: m{"istio-injection": "enabled", "istio.io/rev": "canary"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "pod label false in enabled namespace", ns: m{"istio-injection": "enabled"}, labels: m{"sidecar.istio.io/inject": "false"}, want: false, wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "pod label false in revision namespace", ns: m{"istio.io/rev": "canary"}, labels: m{"sidecar.istio.io/inject": "false"}, want: false, wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "pod label false with pod revision", labels: m{"sidecar.istio.io/inject": "false", "istio.io/rev": "canary"}, want: false, wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "pod label other non-true value disables", ns: m{"istio-injection": "enabled"}, labels: m{"sidecar.istio.io/inject": "no"}, want: false, wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "deprecated annotation false disables", ns: m{"istio-injection": "enabled"}, annots: m{"sidecar.istio.io/inject": "false"}, want: false, wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "label true wins over annotation false", ns: m{"istio-injection": "enabled"}, labels: m{"sidecar.istio.io/inject": "true"}, annots: m{"sidecar.istio.io/inject": "false"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "empty label wins over annotation false", ns: m{"istio-injection": "enabled"}, labels: m{"sidecar.istio.io/inject": ""}, annots: m{"sidecar.istio.io/inject": "false"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "label false wins over annotation true", ns: m{"istio-injection": "enabled"}, labels: m{"sidecar.istio.io/inject": "false"}, annots: m{"sidecar.istio.io/inject": "true"}, want: false, wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "pod label true", labels: m{"sidecar.istio.io/inject": "true"}, want: true, wantReason: v1alpha1.StatusReasonPodInjectionEnabled},
		{name: "pod label yes does not select the object webhook", labels: m{"sidecar.istio.io/inject": "yes"}, want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "pod annotation true alone does not select a webhook", annots: m{"sidecar.istio.io/inject": "true"}, want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "pod revision", labels: m{"istio.io/rev": "canary"}, want: true, wantReason: v1alpha1.StatusReasonPodRevision},
		{name: "empty pod revision", labels: m{"istio.io/rev": ""}, want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "pod label true with pod revision", labels: m{"sidecar.istio.io/inject": "true", "istio.io/rev": "canary"}, want: true, wantReason: v1alpha1.StatusReasonPodInjectionEnabled},
		{name: "system namespace", ns: m{"kubernetes.io/metadata.name": "kube-system", "istio-injection": "enabled"}, want: false, wantReason: v1alpha1.StatusReasonSystemNamespace},
		{name: "ordinary namespace name", ns: m{"kubernetes.io/metadata.name": "shop", "istio-injection": "enabled"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, reason := Injection(tt.ns, tt.labels, tt.annots)
			g.Expect(got).To(Equal(tt.want))
			g.Expect(reason).To(Equal(tt.wantReason))
		})
	}
}
