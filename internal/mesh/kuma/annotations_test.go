package kuma

import (
	"testing"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

func TestInjection(t *testing.T) {
	ns := func(v string) map[string]string {
		m := map[string]string{namespaceNameLabel: "apps"}
		if v != "-" {
			m[SidecarInjectionLabel] = v
		}
		return m
	}
	pod := func(v string) map[string]string {
		if v == "-" {
			return nil
		}
		return map[string]string{SidecarInjectionLabel: v}
	}
	tests := []struct {
		name        string
		ns, pod     string
		nsLabels    map[string]string
		podLabels   map[string]string
		annotations map[string]string
		want        bool
		wantReason  v1alpha1.StatusReason
	}{
		{name: "namespace enabled", ns: "enabled", pod: "-", want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "namespace true", ns: "true", pod: "-", want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "namespace yes is not selected by the webhook", ns: "yes", pod: "-", wantReason: v1alpha1.StatusReasonInjectionLabelNotSelected},
		{name: "namespace Enabled is case-sensitive", ns: "Enabled", pod: "-", wantReason: v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{name: "no labels", ns: "-", pod: "-", wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "pod label alone is not enough", ns: "-", pod: "enabled", wantReason: v1alpha1.StatusReasonNoInjectionLabel},
		{name: "namespace disabled, pod enabled", ns: "disabled", pod: "enabled", want: true, wantReason: v1alpha1.StatusReasonPodInjectionEnabled},
		{name: "namespace disabled, pod true not selected", ns: "disabled", pod: "true", wantReason: v1alpha1.StatusReasonInjectionLabelNotSelected},
		{name: "namespace disabled", ns: "disabled", pod: "-", wantReason: v1alpha1.StatusReasonNamespaceInjectionDisabled},
		{name: "namespace enabled, pod disabled", ns: "enabled", pod: "disabled", wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "namespace enabled, pod no", ns: "enabled", pod: "no", wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "namespace enabled, pod false", ns: "enabled", pod: "false", wantReason: v1alpha1.StatusReasonPodInjectionDisabled},
		{name: "namespace enabled, pod yes", ns: "enabled", pod: "yes", want: true, wantReason: v1alpha1.StatusReasonPodInjectionEnabled},
		{name: "namespace enabled, pod invalid", ns: "enabled", pod: "off", wantReason: v1alpha1.StatusReasonInvalidInjectionLabel},
		{name: "pod annotation is ignored", ns: "enabled", pod: "-", annotations: map[string]string{SidecarInjectionLabel: "disabled"}, want: true, wantReason: v1alpha1.StatusReasonNamespaceInjectionEnabled},
		{name: "kube-system", nsLabels: map[string]string{namespaceNameLabel: "kube-system", SidecarInjectionLabel: "enabled"}, wantReason: v1alpha1.StatusReasonSystemNamespace},
		{name: "kuma-system", nsLabels: map[string]string{namespaceNameLabel: "kuma-system", SidecarInjectionLabel: "enabled"}, wantReason: v1alpha1.StatusReasonSystemNamespace},
		{name: "openshift deployer pod", ns: "enabled", podLabels: map[string]string{"openshift.io/deployer-pod-for.name": "x"}, wantReason: v1alpha1.StatusReasonInjectionException},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nsLabels, podLabels := tt.nsLabels, tt.podLabels
			if nsLabels == nil {
				nsLabels = ns(tt.ns)
			}
			if podLabels == nil && tt.pod != "" {
				podLabels = pod(tt.pod)
			}
			got, reason := Injection(nsLabels, podLabels, tt.annotations)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("Injection = %v, %s; want %v, %s", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestInjectionInOtherSystemNamespace(t *testing.T) {
	nsLabels := map[string]string{namespaceNameLabel: "mesh-cp", SidecarInjectionLabel: "enabled"}
	if got, reason := InjectionIn("mesh-cp", nsLabels, nil, nil); got || reason != v1alpha1.StatusReasonSystemNamespace {
		t.Errorf("InjectionIn = %v, %s", got, reason)
	}
	if got, _ := Injection(nsLabels, nil, nil); !got {
		t.Error("Injection with the default system namespace should inject mesh-cp")
	}
}

func TestMeshOf(t *testing.T) {
	m := func(v string) map[string]string {
		if v == "" {
			return nil
		}
		return map[string]string{MeshLabel: v}
	}
	tests := []struct {
		name                       string
		nsL, nsA, podL, podA, want string
	}{
		{name: "nothing", want: "default"},
		{name: "pod label wins", nsL: "n1", nsA: "n2", podL: "p1", podA: "p2", want: "p1"},
		{name: "pod annotation before namespace", nsL: "n1", nsA: "n2", podA: "p2", want: "p2"},
		{name: "namespace label before annotation", nsL: "n1", nsA: "n2", want: "n1"},
		{name: "namespace annotation", nsA: "n2", want: "n2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MeshOf(m(tt.nsL), m(tt.nsA), m(tt.podL), m(tt.podA)); got != tt.want {
				t.Errorf("MeshOf = %q, want %q", got, tt.want)
			}
		})
	}
	// An empty value does not count.
	if got := MeshOf(m("n1"), nil, map[string]string{MeshLabel: ""}, nil); got != "n1" {
		t.Errorf("empty pod label: %q", got)
	}
}

func TestReadProbeProxy(t *testing.T) {
	tests := []struct {
		raw  *string
		want ProbeProxy
	}{
		{raw: nil, want: ProbeProxy{State: ProbeProxyUnset}},
		{raw: ptr("9001"), want: ProbeProxy{State: ProbeProxyEnabled, Port: 9001, Raw: "9001"}},
		{raw: ptr("0"), want: ProbeProxy{State: ProbeProxyDisabled, Raw: "0"}},
		{raw: ptr("-1"), want: ProbeProxy{State: ProbeProxyInvalid, Raw: "-1"}},
		{raw: ptr("abc"), want: ProbeProxy{State: ProbeProxyInvalid, Raw: "abc"}},
		{raw: ptr(""), want: ProbeProxy{State: ProbeProxyInvalid, Raw: ""}},
		{raw: ptr("65536"), want: ProbeProxy{State: ProbeProxyInvalid, Raw: "65536"}},
		{raw: ptr("4294967296"), want: ProbeProxy{State: ProbeProxyInvalid, Raw: "4294967296"}},
		{raw: ptr(" 9001"), want: ProbeProxy{State: ProbeProxyInvalid, Raw: " 9001"}},
	}
	for _, tt := range tests {
		a := map[string]string{}
		if tt.raw != nil {
			a[ProbeProxyPortAnnotation] = *tt.raw
		}
		if got := ReadProbeProxy(a); got != tt.want {
			t.Errorf("ReadProbeProxy(%v) = %+v, want %+v", a, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestProbeModeFor(t *testing.T) {
	def := DefaultInjectorConfig()
	off := InjectorConfig{VirtualProbesPort: 9000}
	tests := []struct {
		name    string
		ann     map[string]string
		cfg     InjectorConfig
		want    ProbeMode
		wantErr bool
	}{
		{name: "defaults", cfg: def, want: ProbeMode{ProbeModeProxy, 9001}},
		{name: "pod port", ann: map[string]string{ProbeProxyPortAnnotation: "19000"}, cfg: def, want: ProbeMode{ProbeModeProxy, 19000}},
		{name: "pod 0 falls back to virtual", ann: map[string]string{ProbeProxyPortAnnotation: "0"}, cfg: def, want: ProbeMode{ProbeModeVirtual, 9000}},
		{name: "pod 0 and vp disabled still virtual", ann: map[string]string{ProbeProxyPortAnnotation: "0", VirtualProbesAnnotation: "disabled"}, cfg: def, want: ProbeMode{ProbeModeVirtual, 9000}},
		{name: "config off", cfg: off, want: ProbeMode{Kind: ProbeModeNone}},
		{name: "config off, pod vp enabled", ann: map[string]string{VirtualProbesAnnotation: "enabled", VirtualProbesPortAnnotation: "9100"}, cfg: off, want: ProbeMode{ProbeModeVirtual, 9100}},
		{name: "vp disabled keeps the proxy on the legacy path", ann: map[string]string{VirtualProbesAnnotation: "disabled"}, cfg: def, want: ProbeMode{ProbeModeProxy, 9001}},
		{name: "gateway", ann: map[string]string{GatewayAnnotation: "enabled"}, cfg: def, want: ProbeMode{Kind: ProbeModeNone}},
		{name: "gateway with port", ann: map[string]string{GatewayAnnotation: "enabled", ProbeProxyPortAnnotation: "9001"}, cfg: def, wantErr: true},
		{name: "invalid port", ann: map[string]string{ProbeProxyPortAnnotation: "x"}, cfg: def, wantErr: true},
		{name: "invalid vp", ann: map[string]string{VirtualProbesAnnotation: "on"}, cfg: def, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProbeModeFor(tt.ann, tt.cfg)
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Errorf("ProbeModeFor = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
