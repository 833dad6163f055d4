package istio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// istioInjectDir holds Istio's injector golden files (pkg/kube/inject/testdata/inject),
// read in place from the shared fixtures.
const istioInjectDir = "../../../../shared/fixtures/istio-inject"

// goldenPod is the part of a fixture the checks need: the pod template's (or
// pod's) annotations and spec.
type goldenPod struct {
	Annotations map[string]string
	Spec        corev1.PodSpec
}

var yamlDocSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadGoldenPod decodes the first YAML document of a fixture, a Deployment or
// a Pod.
func loadGoldenPod(t *testing.T, path string) goldenPod {
	t.Helper()
	g := NewWithT(t)
	data, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	var doc []byte
	for _, d := range yamlDocSeparator.Split(string(data), -1) {
		if strings.TrimSpace(d) != "" {
			doc = []byte(d)
			break
		}
	}
	g.Expect(doc).NotTo(BeEmpty(), "%s has no YAML document", path)

	var head struct {
		Kind string `json:"kind"`
	}
	g.Expect(yaml.Unmarshal(doc, &head)).To(Succeed())
	switch head.Kind {
	case "Deployment":
		var d appsv1.Deployment
		g.Expect(yaml.Unmarshal(doc, &d)).To(Succeed(), path)
		return goldenPod{Annotations: d.Spec.Template.Annotations, Spec: d.Spec.Template.Spec}
	case "Pod":
		var p corev1.Pod
		g.Expect(yaml.Unmarshal(doc, &p)).To(Succeed(), path)
		return goldenPod{Annotations: p.Annotations, Spec: p.Spec}
	}
	t.Fatalf("%s: unsupported kind %q", path, head.Kind)
	return goldenPod{}
}

// goldenExpectation pins facts about known fixtures, so that the generic checks
// below cannot pass vacuously.
type goldenExpectation struct {
	statusPort int32
	setting    RewriteSetting
	nonExec    []probes.Key // non-exec probes of the input, in Analyze order
}

func key(c string, k v1alpha1.ProbeKind) probes.Key { return probes.Key{Container: c, Kind: k} }

var (
	ready   = v1alpha1.ProbeReadiness
	live    = v1alpha1.ProbeLiveness
	startup = v1alpha1.ProbeStartup
)

var goldenExpectations = map[string]goldenExpectation{
	"hello-probes": {statusPort: 15020, nonExec: []probes.Key{key("hello", ready), key("hello", live), key("world", live)}},
	"hello-probes-with-flag-set-in-annotation":   {statusPort: 15020, setting: RewriteEnabled, nonExec: []probes.Key{key("hello", ready), key("hello", live), key("world", live)}},
	"hello-probes-with-flag-unset-in-annotation": {statusPort: 15020, setting: RewriteDisabled, nonExec: []probes.Key{key("hello", ready), key("hello", live), key("world", live)}},
	"https-probes":       {statusPort: 15020, nonExec: []probes.Key{key("hello", ready), key("hello", live), key("world", live)}},
	"named_port":         {statusPort: 15020, nonExec: []probes.Key{key("hello", ready)}},
	"native-sidecar":     {statusPort: 15020, nonExec: []probes.Key{key("other-sidecar", ready)}},
	"ready_live":         {statusPort: 15020, nonExec: []probes.Key{key("hello", ready), key("hello", live), key("world", live)}},
	"startup_only":       {statusPort: 15020, nonExec: []probes.Key{key("hello", startup)}},
	"status_annotations": {statusPort: 123},
	"tcp-probes":         {statusPort: 15020, nonExec: []probes.Key{key("hello", ready), key("hello", live)}},
	"two_container":      {statusPort: 15020, nonExec: []probes.Key{key("hello", ready), key("world", ready)}},
}

// TestVerifyAgainstIstioGoldenFiles checks Analyze, RewrittenTarget, VerifyPod
// and KubeAppProbers against what Istio's injector really produced for each
// input of its golden files.
func TestVerifyAgainstIstioGoldenFiles(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(istioInjectDir, "*.yaml"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var pairs []string
	for _, in := range inputs {
		if _, err := os.Stat(in + ".injected"); err == nil {
			pairs = append(pairs, in)
		}
	}
	if len(pairs) < 11 {
		t.Fatalf("found %d golden pairs in %s, want at least 11 (is the fixtures directory missing?)", len(pairs), istioInjectDir)
	}

	seen := map[string]bool{}
	for _, in := range pairs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			input := loadGoldenPod(t, in)
			injected := loadGoldenPod(t, in+".injected")

			statusPort, err := StatusPort(input.Annotations, DefaultStatusPort)
			g.Expect(err).NotTo(HaveOccurred())
			setting, _ := ReadRewriteSetting(input.Annotations)

			analysed := Analyze(&input.Spec, statusPort)
			var nonExec []probes.Probe
			for _, p := range analysed {
				if p.Handler != v1alpha1.HandlerExec {
					nonExec = append(nonExec, p)
				}
			}
			if want, ok := goldenExpectations[name]; ok {
				g.Expect(statusPort).To(Equal(want.statusPort))
				g.Expect(setting).To(Equal(want.setting))
				keys := []probes.Key{}
				for _, p := range nonExec {
					keys = append(keys, p.Key())
				}
				g.Expect(keys).To(Equal(append([]probes.Key{}, want.nonExec...)))
			}

			ver := VerifyPod(&injected.Spec, statusPort)
			g.Expect(ver.SidecarInjected).To(BeTrue())
			g.Expect(ver.Probes).To(HaveLen(len(nonExec)))

			probers, err := KubeAppProbers(&injected.Spec)
			g.Expect(err).NotTo(HaveOccurred())

			if setting == RewriteDisabled {
				g.Expect(probers).To(BeNil())
				for _, p := range nonExec {
					v, ok := ver.Probes[p.Key()]
					g.Expect(ok).To(BeTrue(), "no verification for %v", p.Key())
					g.Expect(v).To(Equal(probes.ProbeVerification{Target: p.Original, Reason: v1alpha1.StatusReasonProbeNotRewritten}), "%v", p.Key())
				}
				return
			}

			for _, p := range nonExec {
				g.Expect(p.Hazard).To(BeEmpty(), "%v", p.Key())
				v, ok := ver.Probes[p.Key()]
				g.Expect(ok).To(BeTrue(), "no verification for %v", p.Key())
				g.Expect(v).To(Equal(probes.ProbeVerification{
					Rewritten: true,
					Target:    RewrittenTarget(p, statusPort),
					Original:  p.Original,
				}), "%v", p.Key())
			}

			want := expectedAppHealthJSON(t, &input.Spec)
			g.Expect(appHealthOnly(t, rawKubeAppProbers(&injected.Spec))).To(Equal(want), "raw %s", KubeAppProbersEnv)
			parsed, err := json.Marshal(probers)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(appHealthOnly(t, string(parsed))).To(Equal(want), "KubeAppProbers round trip")
		})
	}
	for name := range goldenExpectations {
		if !seen[name] {
			t.Errorf("expected golden pair %s not found in %s", name, istioInjectDir)
		}
	}
}

// expectedAppHealthJSON builds, from the input spec alone, the
// /app-health/... entries Istio writes to ISTIO_KUBE_APP_PROBERS: the probe's
// own httpGet, tcpSocket or grpc with a named port replaced by the number the
// same container declares, plus timeoutSeconds when set. It returns them as
// parsed JSON.
func expectedAppHealthJSON(t *testing.T, spec *corev1.PodSpec) map[string]any {
	t.Helper()
	out := map[string]any{}
	all := append(append([]corev1.Container{}, spec.Containers...), spec.InitContainers...)
	for _, c := range all {
		if c.Name == ProxyContainerName {
			continue
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		resolve := func(p intstr.IntOrString) intstr.IntOrString {
			if p.Type == intstr.String {
				return intstr.FromInt32(ports[p.StrVal])
			}
			return p
		}
		for _, kind := range probes.Kinds {
			pr := probes.ProbeOf(&c, kind)
			if pr == nil {
				continue
			}
			entry := map[string]any{}
			switch {
			case pr.HTTPGet != nil:
				h := pr.HTTPGet.DeepCopy()
				h.Port = resolve(h.Port)
				entry["httpGet"] = h
			case pr.TCPSocket != nil:
				s := pr.TCPSocket.DeepCopy()
				s.Port = resolve(s.Port)
				entry["tcpSocket"] = s
			case pr.GRPC != nil:
				entry["grpc"] = pr.GRPC
			default:
				continue
			}
			if pr.TimeoutSeconds != 0 {
				entry["timeoutSeconds"] = pr.TimeoutSeconds
			}
			out[ProberPath(c.Name, kind)] = entry
		}
	}
	b, err := json.Marshal(out)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return appHealthOnly(t, string(b))
}

// rawKubeAppProbers returns the ISTIO_KUBE_APP_PROBERS value of istio-proxy.
func rawKubeAppProbers(spec *corev1.PodSpec) string {
	proxy := findProxy(spec)
	if proxy == nil {
		return ""
	}
	for _, e := range proxy.Env {
		if e.Name == KubeAppProbersEnv {
			return e.Value
		}
	}
	return ""
}

// appHealthOnly parses a KubeAppProbers document and keeps the /app-health/
// entries (lifecycle hooks live under /app-lifecycle/).
func appHealthOnly(t *testing.T, doc string) map[string]any {
	t.Helper()
	out := map[string]any{}
	if doc == "" || doc == "null" {
		return out
	}
	var all map[string]any
	NewWithT(t).Expect(json.Unmarshal([]byte(doc), &all)).To(Succeed())
	for k, v := range all {
		if strings.HasPrefix(k, "/app-health/") {
			out[k] = v
		}
	}
	return out
}
