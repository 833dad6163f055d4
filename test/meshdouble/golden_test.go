package meshdouble

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// istioInjectDir holds Istio's own injector golden files
// (istio/istio pkg/kube/inject/testdata/inject), read in place.
const istioInjectDir = "../../../shared/fixtures/istio-inject"

// minGoldenPairs is the number of input/output pairs the fixture directory
// holds; fewer means the directory is missing or was truncated, which must
// fail rather than let the proof pass vacuously.
const minGoldenPairs = 11

// istioFixtureRewriteDefault is the mesh default the golden files were made
// with (sidecarInjectorWebhook.rewriteAppHTTPProbe: true, Istio's default).
const istioFixtureRewriteDefault = true

// loadPod decodes a golden file holding exactly one Deployment or Pod into a
// Pod: a Deployment becomes its pod template (template metadata and spec).
func loadPod(t *testing.T, path string) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	data, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())

	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		g.Expect(err).NotTo(HaveOccurred(), path)
		if len(bytes.TrimSpace(doc)) > 0 && strings.Trim(string(bytes.TrimSpace(doc)), "-") != "" {
			docs = append(docs, doc)
		}
	}
	g.Expect(docs).To(HaveLen(1), "%s: want exactly one YAML document", path)

	var head struct {
		Kind string `json:"kind"`
	}
	g.Expect(yaml.Unmarshal(docs[0], &head)).To(Succeed(), path)
	switch head.Kind {
	case "Deployment":
		var d appsv1.Deployment
		g.Expect(yaml.UnmarshalStrict(docs[0], &d)).To(Succeed(), path)
		return &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
	case "Pod":
		var p corev1.Pod
		g.Expect(yaml.UnmarshalStrict(docs[0], &p)).To(Succeed(), path)
		return &p
	}
	t.Fatalf("%s: unsupported kind %q", path, head.Kind)
	return nil
}

// probeView is what the proof compares per container.
type probeView struct {
	ReadinessProbe *corev1.Probe     `json:"readinessProbe,omitempty"`
	LivenessProbe  *corev1.Probe     `json:"livenessProbe,omitempty"`
	StartupProbe   *corev1.Probe     `json:"startupProbe,omitempty"`
	Lifecycle      *corev1.Lifecycle `json:"lifecycle,omitempty"`
}

// appContainers maps "containers/<name>" and "initContainers/<name>" to the
// probe view of every container except istio-proxy.
func appContainers(spec *corev1.PodSpec) map[string]probeView {
	out := map[string]probeView{}
	add := func(list string, cs []corev1.Container) {
		for _, c := range cs {
			if c.Name == istiomesh.ProxyContainerName {
				continue
			}
			out[list+"/"+c.Name] = probeView{
				ReadinessProbe: c.ReadinessProbe, LivenessProbe: c.LivenessProbe,
				StartupProbe: c.StartupProbe, Lifecycle: c.Lifecycle,
			}
		}
	}
	add("containers", spec.Containers)
	add("initContainers", spec.InitContainers)
	return out
}

// asJSON marshals v and parses it back into generic JSON values (maps,
// slices, float64s), so that comparisons ignore Go types and key order.
func asJSON(g Gomega, v any) any {
	b, err := json.Marshal(v)
	g.Expect(err).NotTo(HaveOccurred())
	var out any
	g.Expect(json.Unmarshal(b, &out)).To(Succeed())
	return out
}

// parseProbers parses an ISTIO_KUBE_APP_PROBERS value into generic JSON; nil
// when absent.
func parseProbers(g Gomega, value string, present bool) any {
	if !present {
		return nil
	}
	var out any
	g.Expect(json.Unmarshal([]byte(value), &out)).To(Succeed(), "ISTIO_KUBE_APP_PROBERS is not JSON: %s", value)
	return out
}

// proxyProbers returns the ISTIO_KUBE_APP_PROBERS value of the istio-proxy
// container (in containers or initContainers) and whether it is set. It fails
// if there is no istio-proxy or the variable is set twice.
func proxyProbers(t *testing.T, spec *corev1.PodSpec) (string, bool) {
	t.Helper()
	var proxies []corev1.Container
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range cs {
			if c.Name == istiomesh.ProxyContainerName {
				proxies = append(proxies, c)
			}
		}
	}
	if len(proxies) != 1 {
		t.Fatalf("want exactly one %s container, found %d", istiomesh.ProxyContainerName, len(proxies))
	}
	value, found := "", false
	for _, e := range proxies[0].Env {
		if e.Name == istiomesh.KubeAppProbersEnv {
			if found {
				t.Fatalf("%s is set twice on %s", istiomesh.KubeAppProbersEnv, istiomesh.ProxyContainerName)
			}
			value, found = e.Value, true
		}
	}
	return value, found
}

// goldenPairs lists the inputs in istioInjectDir that have an .injected
// output.
func goldenPairs(t *testing.T) []string {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join(istioInjectDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for _, in := range inputs {
		if _, err := os.Stat(in + ".injected"); err == nil {
			pairs = append(pairs, in)
		}
	}
	sort.Strings(pairs)
	if len(pairs) < minGoldenPairs {
		t.Fatalf("found %d golden pairs in %s, want at least %d: the Istio fixtures are missing",
			len(pairs), istioInjectDir, minGoldenPairs)
	}
	return pairs
}

// TestDoubleMatchesIstioGoldenFiles is the proof that the double is faithful:
// for every Istio injector golden file, the double's rewrite of the input
// gives every app container and init container exactly the probes and
// lifecycle hooks Istio gave it, and the same ISTIO_KUBE_APP_PROBERS document
// (as parsed JSON), or none when Istio wrote none.
//
// Both entry points are checked: RewriteProbes, given the status port and the
// rewrite decision worked out here from the input's annotations, and Inject,
// which works them out itself.
func TestDoubleMatchesIstioGoldenFiles(t *testing.T) {
	var withProbers, notRewritten, movedPort int
	for _, in := range goldenPairs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			input := loadPod(t, in)
			want := loadPod(t, in+".injected")

			wantContainers := appContainers(&want.Spec)
			wantValue, wantSet := proxyProbers(t, &want.Spec)
			wantProbers := parseProbers(g, wantValue, wantSet)

			inputContainers := appContainers(&input.Spec)
			g.Expect(inputContainers).NotTo(BeEmpty(), "fixture input has no app container")
			// The input carries no sidecar: the double must produce the
			// document from scratch, as Istio did.
			g.Expect(findSidecar(&input.Spec)).To(BeNil(), "fixture input already has %s", istiomesh.ProxyContainerName)

			check := func(how string, got *corev1.Pod, gotValue string, gotSet bool) {
				gotContainers := appContainers(&got.Spec)
				for key := range inputContainers {
					g.Expect(wantContainers).To(HaveKey(key), "%s: Istio's output lacks input container %s", how, key)
					g.Expect(asJSON(g, gotContainers[key])).To(Equal(asJSON(g, wantContainers[key])),
						"%s: probes and lifecycle of %s differ from Istio's", how, key)
				}
				gotProbers := parseProbers(g, gotValue, gotSet)
				if wantProbers == nil {
					g.Expect(gotProbers).To(BeNil(), "%s: Istio wrote no %s, the double wrote %q",
						how, istiomesh.KubeAppProbersEnv, gotValue)
					return
				}
				g.Expect(gotProbers).To(Equal(wantProbers),
					"%s: %s differs from Istio's\n got: %q\nwant: %q", how, istiomesh.KubeAppProbersEnv, gotValue, wantValue)
			}

			// 1. The pure core, with the rewrite decision and the status port
			// worked out here from the input's annotations.
			statusPort, err := istiomesh.StatusPort(input.Annotations, istiomesh.DefaultStatusPort)
			g.Expect(err).NotTo(HaveOccurred())
			doRewrite := istioFixtureRewriteDefault
			if v, ok := input.Annotations[istiomesh.RewriteAnnotation]; ok {
				if b, err := strconv.ParseBool(v); err == nil {
					doRewrite = b
				}
			}
			core := input.DeepCopy()
			value := ""
			if doRewrite {
				value, err = RewriteProbes(&core.Spec, statusPort)
				g.Expect(err).NotTo(HaveOccurred())
			}
			check("RewriteProbes", core, value, value != "")

			// 2. The whole double, which decides by itself.
			injected := input.DeepCopy()
			rewritten, err := Inject(injected, Config{
				RewriteAppHTTPProbe: istioFixtureRewriteDefault,
				StatusPort:          istiomesh.DefaultStatusPort,
			})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rewritten).To(Equal(doRewrite), "Inject's rewrite decision")
			gotValue, gotSet := proxyProbers(t, &injected.Spec)
			check("Inject", injected, gotValue, gotSet)

			if wantSet {
				withProbers++
			}
			if !doRewrite {
				notRewritten++
			}
			if statusPort != istiomesh.DefaultStatusPort {
				movedPort++
			}
			t.Logf("%s: rewrite=%t statusPort=%d containers=%d %s=%s",
				name, doRewrite, statusPort, len(inputContainers), istiomesh.KubeAppProbersEnv, wantValue)
		})
	}
	// The fixtures must exercise each branch, or the proof is weaker than it
	// claims.
	g := NewWithT(t)
	g.Expect(withProbers).To(BeNumerically(">=", 9), "fixtures where Istio wrote %s", istiomesh.KubeAppProbersEnv)
	g.Expect(notRewritten).To(BeNumerically(">=", 1), "fixtures with the rewrite switched off")
	g.Expect(movedPort).To(BeNumerically(">=", 1), "fixtures with a non-default status port")
}
