package istio

import (
	"testing"

	. "github.com/onsi/gomega"
	"istio.io/api/annotation"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

func TestConstantsMatchIstioAPI(t *testing.T) {
	g := NewWithT(t)
	g.Expect(RewriteAnnotation).To(Equal(annotation.SidecarRewriteAppHTTPProbers.Name))
	g.Expect(StatusPortAnnotation).To(Equal(annotation.SidecarStatusPort.Name))
}

func TestReadRewriteSetting(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        RewriteSetting
		wantRaw     string
		rewrites    bool // with mesh default true
	}{
		{name: "true", annotations: map[string]string{RewriteAnnotation: "true"}, want: RewriteEnabled, wantRaw: "true", rewrites: true},
		{name: "1", annotations: map[string]string{RewriteAnnotation: "1"}, want: RewriteEnabled, wantRaw: "1", rewrites: true},
		{name: "T", annotations: map[string]string{RewriteAnnotation: "T"}, want: RewriteEnabled, wantRaw: "T", rewrites: true},
		{name: "false", annotations: map[string]string{RewriteAnnotation: "false"}, want: RewriteDisabled, wantRaw: "false", rewrites: false},
		{name: "0", annotations: map[string]string{RewriteAnnotation: "0"}, want: RewriteDisabled, wantRaw: "0", rewrites: false},
		{name: "yes is not a ParseBool value", annotations: map[string]string{RewriteAnnotation: "yes"}, want: RewriteInvalid, wantRaw: "yes", rewrites: true},
		{name: "empty is invalid", annotations: map[string]string{RewriteAnnotation: ""}, want: RewriteInvalid, wantRaw: "", rewrites: true},
		{name: "absent", annotations: map[string]string{"other": "false"}, want: RewriteUnset, wantRaw: "", rewrites: true},
		{name: "nil map", annotations: nil, want: RewriteUnset, wantRaw: "", rewrites: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, raw := ReadRewriteSetting(tt.annotations)
			g.Expect(got).To(Equal(tt.want), "setting %s", got)
			g.Expect(raw).To(Equal(tt.wantRaw))
			g.Expect(got.Rewrites(true)).To(Equal(tt.rewrites))
		})
	}
}

func TestRewriteSettingRewritesWithMeshDefaultOff(t *testing.T) {
	g := NewWithT(t)
	g.Expect(RewriteEnabled.Rewrites(false)).To(BeTrue())
	g.Expect(RewriteDisabled.Rewrites(false)).To(BeFalse())
	g.Expect(RewriteUnset.Rewrites(false)).To(BeFalse())
	g.Expect(RewriteInvalid.Rewrites(false)).To(BeFalse())
	g.Expect(RewriteInvalid.String()).To(Equal("Invalid"))
}

func TestStatusPort(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        int32
		wantErr     bool
	}{
		{name: "absent", annotations: nil, want: DefaultStatusPort},
		{name: "valid", annotations: map[string]string{StatusPortAnnotation: "123"}, want: 123},
		{name: "max", annotations: map[string]string{StatusPortAnnotation: "65535"}, want: 65535},
		{name: "zero disables", annotations: map[string]string{StatusPortAnnotation: "0"}, want: 0},
		{name: "not a number", annotations: map[string]string{StatusPortAnnotation: "abc"}, want: DefaultStatusPort, wantErr: true},
		{name: "too large", annotations: map[string]string{StatusPortAnnotation: "65536"}, want: DefaultStatusPort, wantErr: true},
		{name: "negative", annotations: map[string]string{StatusPortAnnotation: "-1"}, want: DefaultStatusPort, wantErr: true},
		{name: "empty", annotations: map[string]string{StatusPortAnnotation: ""}, want: DefaultStatusPort, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := StatusPort(tt.annotations, DefaultStatusPort)
			g.Expect(got).To(Equal(tt.want))
			if tt.wantErr {
				g.Expect(err).To(HaveOccurred())
			} else {
				g.Expect(err).NotTo(HaveOccurred())
			}
		})
	}
}

func TestStatusPortUsesGivenMeshDefault(t *testing.T) {
	g := NewWithT(t)
	got, err := StatusPort(map[string]string{}, 15999)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(int32(15999)))
}

func TestProberPath(t *testing.T) {
	tests := []struct {
		kind v1alpha1.ProbeKind
		want string
	}{
		{kind: v1alpha1.ProbeReadiness, want: "/app-health/web/readyz"},
		{kind: v1alpha1.ProbeLiveness, want: "/app-health/web/livez"},
		{kind: v1alpha1.ProbeStartup, want: "/app-health/web/startupz"},
		{kind: "Other", want: ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			NewWithT(t).Expect(ProberPath("web", tt.kind)).To(Equal(tt.want))
		})
	}
}
