package istio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// FuzzAnalyzeAndVerify feeds arbitrary pod specs (JSON) to the probe analysis and the live-pod
// verification: no input may panic or hang, and the analysis of a spec must not change it. The
// seeds are the pods of Istio's injector golden files, before and after injection.
func FuzzAnalyzeAndVerify(f *testing.F) {
	for _, spec := range goldenPodSpecs(f) {
		f.Add(spec, int32(15020))
	}
	f.Add([]byte(`{"containers":[{"name":"istio-proxy","env":[{"name":"ISTIO_KUBE_APP_PROBERS","value":"{\"/app-health/a/readyz\":{\"httpGet\":{\"port\":\"http\"}}}"}]},{"name":"a","readinessProbe":{"httpGet":{"path":"/app-health/a/readyz","port":15020}}}]}`), int32(15020))
	f.Add([]byte(`{"containers":[{"name":"a","ports":[{"name":"p","containerPort":0}],"livenessProbe":{"tcpSocket":{"port":"p"}},"startupProbe":{"grpc":{"port":-1}}}]}`), int32(0))
	f.Fuzz(func(t *testing.T, data []byte, statusPort int32) {
		var spec corev1.PodSpec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		before, err := json.Marshal(&spec)
		if err != nil {
			return
		}
		analysed := Analyze(&spec, statusPort)
		for _, p := range analysed {
			_ = RewrittenTarget(p, statusPort)
		}
		MarkStartupBeforeProxy(analysed, true)
		MarkStartupBeforeProxy(analysed, false)
		_ = VerifyPod(&spec, statusPort)
		_, _ = KubeAppProbers(&spec)
		_, _ = Originals(&spec, statusPort)
		after, err := json.Marshal(&spec)
		if err != nil || string(before) != string(after) {
			t.Fatalf("the analysis changed the pod spec:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// goldenPodSpecs returns the pod specs of ../shared/fixtures/istio-inject as JSON.
func goldenPodSpecs(f *testing.F) [][]byte {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join(istioInjectDir, "*"))
	var out [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var obj struct {
			Spec struct {
				Template struct {
					Spec corev1.PodSpec `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if yaml.Unmarshal(data, &obj) != nil || len(obj.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		if b, err := json.Marshal(obj.Spec.Template.Spec); err == nil {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		f.Fatal("no pod spec seeds in ../shared/fixtures/istio-inject")
	}
	return out
}
