package controllers_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/controllers"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// fixturePods reads every pod of Istio's and Kuma's injector golden files (inputs and outputs; a
// workload's pod template counts as a pod).
func fixturePods(t *testing.T) map[string]*corev1.Pod {
	t.Helper()
	pods := map[string]*corev1.Pod{}
	for _, dir := range []string{"istio-inject", "kuma-inject"} {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "..", "shared", "fixtures", dir, "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no fixtures in %s: %v", dir, err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range bytes.Split(data, []byte("\n---")) {
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal(doc, &u.Object); err != nil || u.Object == nil {
					continue
				}
				pod := &corev1.Pod{}
				switch {
				case u.GetKind() == "Pod":
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, pod); err != nil {
						t.Fatalf("%s: %v", file, err)
					}
				default:
					template, found, _ := unstructured.NestedMap(u.Object, "spec", "template")
					if !found {
						continue
					}
					var spec corev1.PodTemplateSpec
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(template, &spec); err != nil {
						t.Fatalf("%s: %v", file, err)
					}
					pod.ObjectMeta, pod.Spec = spec.ObjectMeta, spec.Spec
				}
				pods[filepath.Base(file)+"#"+string(rune('0'+i))] = pod
			}
		}
	}
	return pods
}

// TestSlimPodKeepsEveryDecision checks, on every pod of Istio's and Kuma's golden files, that both
// meshes' analysis and verification, the Istio version, native sidecars and the pod's workload
// read the same on the cache's slim pod as on the whole pod, and that the slim pod is smaller.
func TestSlimPodKeepsEveryDecision(t *testing.T) {
	pods := fixturePods(t)
	NewWithT(t).Expect(len(pods)).To(BeNumerically(">=", 20))
	istio := &istiomesh.View{StatusPort: istiomesh.DefaultStatusPort}
	kuma := &kumamesh.View{}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}
			out, err := controllers.SlimPod(pod.DeepCopy())
			g.Expect(err).NotTo(HaveOccurred())
			slim := out.(*corev1.Pod)
			g.Expect(slim.Status).To(Equal(corev1.PodStatus{}))

			g.Expect(istio.AnalyzePod(slim)).To(Equal(istio.AnalyzePod(pod)))
			port, _ := istiomesh.StatusPort(pod.Annotations, istiomesh.DefaultStatusPort)
			g.Expect(istiomesh.VerifyPod(&slim.Spec, port)).To(Equal(istiomesh.VerifyPod(&pod.Spec, port)))
			g.Expect(istiomesh.NewestOnPods([]*corev1.Pod{slim})).To(Equal(istiomesh.NewestOnPods([]*corev1.Pod{pod})))
			native, found := istiomesh.NativeSidecarOnPod(&pod.Spec)
			slimNative, slimFound := istiomesh.NativeSidecarOnPod(&slim.Spec)
			g.Expect([]bool{slimNative, slimFound}).To(Equal([]bool{native, found}))

			g.Expect(kuma.AnalyzePod(slim)).To(Equal(kuma.AnalyzePod(pod)))
			g.Expect(kumamesh.VerifyPod(slim)).To(Equal(kumamesh.VerifyPod(pod)))

			ref, ok := plan.WorkloadOfPod(pod)
			slimRef, slimOK := plan.WorkloadOfPod(slim)
			g.Expect(slimRef).To(Equal(ref))
			g.Expect(slimOK).To(Equal(ok))
		})
	}
}
