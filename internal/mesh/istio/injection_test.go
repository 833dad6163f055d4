package istio

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/version"

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
		// The revision's rev.object webhook injects; object.sidecar-injector requires no istio.io/rev.
		{name: "pod label true with pod revision", labels: m{"sidecar.istio.io/inject": "true", "istio.io/rev": "canary"}, want: true, wantReason: v1alpha1.StatusReasonPodRevision},
		// Found by test/istio's cross-check against Istio's chart and injector: an empty
		// istio.io/rev selects no revision and keeps the other webhooks away.
		{name: "pod label true with empty pod revision", labels: m{"sidecar.istio.io/inject": "true", "istio.io/rev": ""}, want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "pod label true in namespace with empty revision", ns: m{"istio.io/rev": ""}, labels: m{"sidecar.istio.io/inject": "true"}, want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "pod revision in namespace with empty revision", ns: m{"istio.io/rev": ""}, labels: m{"istio.io/rev": "default"}, want: false, wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "namespace enabled with empty revisions", ns: m{"istio-injection": "enabled", "istio.io/rev": ""}, labels: m{"istio.io/rev": ""}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "system namespace", ns: m{"kubernetes.io/metadata.name": "kube-system", "istio-injection": "enabled"}, want: false, wantReason: v1alpha1.StatusReasonSystemNamespace},
		{name: "ordinary namespace name", ns: m{"kubernetes.io/metadata.name": "shop", "istio-injection": "enabled"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
	}
	// These cases are Istio before 1.27, which read the label's value loosely.
	before := IstioVersion{Version: version.MustParseGeneric("1.26.4")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, reason := Injection(tt.ns, tt.labels, tt.annots, before)
			g.Expect(got).To(Equal(tt.want))
			g.Expect(reason).To(Equal(tt.wantReason))
		})
	}
}

// TestInjectLabelValuesByIstioVersion is issue 8, case 4: from Istio 1.27 only exactly "true"
// and "false" decide; another value falls back to the namespace default. An unknown version
// follows the newest Istio.
func TestInjectLabelValuesByIstioVersion(t *testing.T) {
	enabled := map[string]string{"istio-injection": "enabled"}
	v := func(s string) IstioVersion { return IstioVersion{Version: version.MustParseGeneric(s)} }
	tests := []struct {
		value  string
		istio  IstioVersion
		want   bool
		reason v1alpha1.StatusReason
	}{
		{"False", v("1.26.4"), false, v1alpha1.StatusReasonPodInjectionDisabled},
		{"False", v("1.27.0"), true, v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{"False", IstioVersion{}, true, v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{"no", v("1.26.4"), false, v1alpha1.StatusReasonPodInjectionDisabled},
		{"no", v("1.30.3"), true, v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{"off", v("1.28.1"), true, v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{"false", v("1.26.4"), false, v1alpha1.StatusReasonPodInjectionDisabled},
		{"false", v("1.27.0"), false, v1alpha1.StatusReasonPodInjectionDisabled},
		{"false", IstioVersion{}, false, v1alpha1.StatusReasonPodInjectionDisabled},
		{"true", v("1.27.0"), true, v1alpha1.StatusReasonNamespaceInjectionEnabled},
	}
	for _, tt := range tests {
		got, reason := Injection(enabled, map[string]string{"sidecar.istio.io/inject": tt.value}, nil, tt.istio)
		NewWithT(t).Expect([]any{got, reason}).To(Equal([]any{tt.want, tt.reason}), "%q at Istio %s", tt.value, tt.istio)
	}
}

func TestVersionOfImage(t *testing.T) {
	tests := []struct{ image, want string }{
		{"docker.io/istio/proxyv2:1.27.1", "1.27.1"},
		{"gcr.io/istio-release/pilot:1.26.0-distroless", "1.26.0"},
		{"registry.cn-hangzhou.aliyuncs.com/acs/proxyv2:v1.22.6.1-g5c1d", "1.22.6"},
		{"localhost:5000/istio/proxyv2:1.28", "1.28"},
		{"docker.io/istio/proxyv2:1.27.1@sha256:0123", "1.27.1"},
		{"docker.io/istio/proxyv2@sha256:0123", ""},
		{"localhost:5000/proxyv2", ""},
		{"proxyv2:latest", ""},
	}
	for _, tt := range tests {
		got, ok := VersionOfImage(tt.image)
		if tt.want == "" {
			NewWithT(t).Expect(ok).To(BeFalse(), tt.image)
			continue
		}
		NewWithT(t).Expect(ok).To(BeTrue(), tt.image)
		NewWithT(t).Expect(got.String()).To(Equal(tt.want), tt.image)
	}
	g := NewWithT(t)
	old := IstioVersion{Version: version.MustParseGeneric("1.11.8")}
	g.Expect(old.Has(RewriteTCPProbes)).To(BeFalse())
	g.Expect(old.Has(RewriteGRPCProbes)).To(BeFalse())
	g.Expect(IstioVersion{Version: version.MustParseGeneric("1.12.0")}.Has(RewriteTCPProbes)).To(BeTrue())
	g.Expect(IstioVersion{}.Has(StrictInjectLabel)).To(BeTrue(), "an unknown version is the newest")
	g.Expect(IstioVersion{}.String()).To(Equal("unknown"))
}
