package meshdouble

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// kumaInjectDir holds Kuma's own injector golden files (kumahq/kuma
// pkg/plugins/runtime/k8s/webhooks/injector/testdata at v2.14.3), read in
// place; cases.yaml there names the injector config of every case.
const kumaInjectDir = "../../../shared/fixtures/kuma-inject"

// kumaGoldenCase is one entry of cases.yaml.
type kumaGoldenCase struct {
	Num                 string `json:"num"`
	Title               string `json:"title"`
	Config              string `json:"config"`
	NativeSidecarGolden string `json:"nativeSidecarGolden"`
}

// kumaInjectorConfig is the part of kuma-cp's runtime.kubernetes.injector
// config (the fixtures' inject.*.config.yaml) that the double models.
type kumaInjectorConfig struct {
	SidecarContainer struct {
		Image          string          `json:"image"`
		UID            int64           `json:"uid"`
		AdminPort      uint32          `json:"adminPort"`
		RedirectIn     uint32          `json:"redirectPortInbound"`
		RedirectOut    uint32          `json:"redirectPortOutbound"`
		ReadinessProbe KumaProbeTiming `json:"readinessProbe"`
		LivenessProbe  KumaProbeTiming `json:"livenessProbe"`
		StartupProbe   KumaProbeTiming `json:"startupProbe"`
	} `json:"sidecarContainer"`
	InitContainer struct {
		Image string `json:"image"`
	} `json:"initContainer"`
	ControlPlane struct {
		APIServer struct {
			URL string `json:"url"`
		} `json:"apiServer"`
	} `json:"controlPlane"`
	VirtualProbesEnabled      bool   `json:"virtualProbesEnabled"`
	VirtualProbesPort         uint32 `json:"virtualProbesPort"`
	ApplicationProbeProxyPort uint32 `json:"applicationProbeProxyPort"`
	Exceptions                struct {
		Labels map[string]string `json:"labels"`
	} `json:"exceptions"`
}

// UnmarshalJSON lets KumaProbeTiming read the config's lowerCamel keys.
func (t *KumaProbeTiming) UnmarshalJSON(b []byte) error {
	var v struct {
		InitialDelaySeconds int32 `json:"initialDelaySeconds"`
		TimeoutSeconds      int32 `json:"timeoutSeconds"`
		PeriodSeconds       int32 `json:"periodSeconds"`
		SuccessThreshold    int32 `json:"successThreshold"`
		FailureThreshold    int32 `json:"failureThreshold"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = KumaProbeTiming{v.InitialDelaySeconds, v.TimeoutSeconds, v.PeriodSeconds, v.SuccessThreshold, v.FailureThreshold}
	return nil
}

func loadKumaOptions(t *testing.T, file string) KumaOptions {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(kumaInjectDir, file))
	if err != nil {
		t.Fatalf("injector config: %v", err)
	}
	var c kumaInjectorConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return KumaOptions{
		ProbeProxyPort:       c.ApplicationProbeProxyPort,
		VirtualProbesEnabled: c.VirtualProbesEnabled,
		VirtualProbesPort:    c.VirtualProbesPort,
		SidecarImage:         c.SidecarContainer.Image,
		InitImage:            c.InitContainer.Image,
		AdminPort:            c.SidecarContainer.AdminPort,
		UID:                  c.SidecarContainer.UID,
		RedirectPortInbound:  c.SidecarContainer.RedirectIn,
		RedirectPortOutbound: c.SidecarContainer.RedirectOut,
		ControlPlaneURL:      c.ControlPlane.APIServer.URL,
		SidecarReadiness:     c.SidecarContainer.ReadinessProbe,
		SidecarLiveness:      c.SidecarContainer.LivenessProbe,
		SidecarStartup:       c.SidecarContainer.StartupProbe,
		ExceptionLabels:      c.Exceptions.Labels,
	}
}

func loadKumaCases(t *testing.T) []kumaGoldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(kumaInjectDir, "cases.yaml"))
	if err != nil {
		t.Fatalf("Kuma golden cases: %v", err)
	}
	var doc struct {
		Cases []kumaGoldenCase `json:"cases"`
	}
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		t.Fatalf("cases.yaml: %v", err)
	}
	if len(doc.Cases) < 7 {
		t.Fatalf("cases.yaml lists %d cases, want at least 7: the Kuma fixtures are missing or truncated", len(doc.Cases))
	}
	return doc.Cases
}

// kumaView is what the proof compares for one injected pod.
type kumaView struct {
	// Containers lists "initContainers/<name>" and "containers/<name>" in
	// order, so the placement of kuma-sidecar and kuma-init is compared.
	Containers []string
	// Probes maps each container to its three probes and restartPolicy.
	Probes map[string]any
	// Annotations and Labels of the pod, whole.
	Annotations, Labels map[string]string
	// SidecarProbeEnv is every env var of kuma-sidecar whose name mentions
	// PROBE (KUMA_APPLICATION_PROBE_PROXY_PORT).
	SidecarProbeEnv []corev1.EnvVar
	// InitArgs are kuma-init's arguments (--exclude-inbound-ports: the probe
	// proxy port left out of capture).
	InitArgs []string
}

// viewOfKumaPod extracts the compared parts. What is NOT compared, and why:
// the sidecar's image, args, resources, security context, volume mounts and
// its other env (control-plane URL and CA certificate, DNS, drain time, OTel,
// token path): they are configuration of kuma-dp, not of the probes, and the
// double keeps only a reduced container; kuma-init's command, env and
// security context (iptables details); the pod's volumes. None of them
// changes where kubelet sends a probe or what the probe proxy does with it.
func viewOfKumaPod(g Gomega, pod *corev1.Pod) kumaView {
	v := kumaView{Probes: map[string]any{}, Annotations: pod.Annotations, Labels: pod.Labels}
	add := func(list string, cs []corev1.Container) {
		for _, c := range cs {
			key := list + "/" + c.Name
			v.Containers = append(v.Containers, key)
			v.Probes[key] = asJSON(g, map[string]any{
				"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe,
				"startupProbe": c.StartupProbe, "restartPolicy": c.RestartPolicy,
			})
			switch c.Name {
			case KumaSidecarName:
				for _, e := range c.Env {
					if strings.Contains(e.Name, "PROBE") {
						v.SidecarProbeEnv = append(v.SidecarProbeEnv, e)
					}
				}
			case KumaInitName:
				v.InitArgs = c.Args
			}
		}
	}
	add("initContainers", pod.Spec.InitContainers)
	add("containers", pod.Spec.Containers)
	return v
}

// kumaAdmit runs pod through KumaWebhook as the API server would for the
// fixtures' namespace "default" (labelled kuma.io/sidecar-injection=enabled)
// and returns the patched pod.
func kumaAdmit(g Gomega, o KumaOptions, pod *corev1.Pod) *corev1.Pod {
	raw, err := json.Marshal(pod)
	g.Expect(err).NotTo(HaveOccurred())
	wh := &KumaWebhook{Options: o}
	resp := wh.admit(context.Background(), &admissionv1.AdmissionRequest{
		UID: "u", Namespace: "default", Operation: admissionv1.Create,
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Object:   runtime.RawExtension{Raw: raw},
	})
	g.Expect(resp.Allowed).To(BeTrue(), "without the namespace label the pod is not Kuma's: the double must not inject")
	g.Expect(resp.Result).To(BeNil())
	g.Expect(resp.Patch).To(BeNil())

	wh.NamespaceLabels = func(context.Context, string) (map[string]string, error) {
		return map[string]string{KumaSidecarInjectionLabel: "enabled"}, nil
	}
	resp = wh.admit(context.Background(), &admissionv1.AdmissionRequest{
		UID: "u", Namespace: "default", Operation: admissionv1.Create,
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Object:   runtime.RawExtension{Raw: raw},
	})
	g.Expect(resp.Allowed).To(BeTrue(), "%+v", resp.Result)
	p, err := jsonpatchapply.DecodePatch(resp.Patch)
	g.Expect(err).NotTo(HaveOccurred())
	out, err := p.Apply(raw)
	g.Expect(err).NotTo(HaveOccurred())
	var got corev1.Pod
	g.Expect(json.Unmarshal(out, &got)).To(Succeed())
	return &got
}

// TestKumaDoubleMatchesGoldenFiles is the proof that the Kuma double is
// faithful: for EVERY case of Kuma's own injector golden files (cases.yaml,
// each with its injector config; also the native-sidecar golden where one is
// listed), the double's mutation, through KumaInject and through
// KumaWebhook's JSON Patch, gives exactly Kuma's container order, every
// container's readiness/liveness/startup probes and restartPolicy (the probe
// rewrite and the sidecar's own probes), the pod's whole annotations and
// labels (kuma.io/application-probe-proxy-port, kuma.io/virtual-probes,
// kuma.io/virtual-probes-port among them), kuma-sidecar's probe-related env
// and kuma-init's arguments. A listed file that is missing fails the test.
func TestKumaDoubleMatchesGoldenFiles(t *testing.T) {
	var proxied, virtual, untouched, native int
	for _, tc := range loadKumaCases(t) {
		goldens := map[bool]string{false: "inject." + tc.Num + ".golden.yaml"}
		if tc.NativeSidecarGolden != "" {
			goldens[true] = tc.NativeSidecarGolden
		}
		for nativeSidecar, golden := range goldens {
			name := tc.Num
			if nativeSidecar {
				name += "-native"
			}
			t.Run(name, func(t *testing.T) {
				g := NewWithT(t)
				input := loadPod(t, filepath.Join(kumaInjectDir, "inject."+tc.Num+".input.yaml"))
				want := loadPod(t, filepath.Join(kumaInjectDir, golden))
				o := loadKumaOptions(t, tc.Config)
				o.NativeSidecar = nativeSidecar

				wantView := viewOfKumaPod(g, want)
				got := input.DeepCopy()
				g.Expect(KumaInject(got, "default", o)).To(Succeed())
				g.Expect(viewOfKumaPod(g, got)).To(Equal(wantView), "KumaInject, case %s (%s)", tc.Num, tc.Title)
				g.Expect(viewOfKumaPod(g, kumaAdmit(g, o, input))).To(Equal(wantView), "KumaWebhook, case %s", tc.Num)

				// Which mechanism the case exercised.
				if nativeSidecar {
					native++
				}
				switch {
				case want.Annotations[KumaProbeProxyPortAnnotation] != "0":
					proxied++
				case want.Annotations[KumaVirtualProbesAnnotation] == "enabled":
					virtual++
				default:
					untouched++
				}
				t.Logf("%s %s: config %s, probe-proxy-port=%s virtual-probes=%s", name, tc.Title, tc.Config,
					want.Annotations[KumaProbeProxyPortAnnotation], want.Annotations[KumaVirtualProbesAnnotation])
			})
		}
	}
	g := NewWithT(t)
	g.Expect(proxied).To(BeNumerically(">=", 4), "cases with the application probe proxy")
	g.Expect(virtual).To(BeNumerically(">=", 2), "cases with virtual probes")
	g.Expect(untouched).To(BeNumerically(">=", 1), "cases with both off")
	g.Expect(native).To(BeNumerically(">=", 2), "native-sidecar goldens")
}
