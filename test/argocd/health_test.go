package argocd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/argoproj/gitops-engine/pkg/health"
	"github.com/proberedirect/probe-redirect-operator/test/argocd/argo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// healthTest is the layout of Argo CD's resource_customizations/<group>/<Kind>/health_test.yaml
// (util/lua/health_test.go TestStructure).
type healthTest struct {
	Tests []struct {
		InputPath    string              `json:"inputPath"`
		HealthStatus health.HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

func readHealthScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(HealthDir(), "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readHealthTests(t *testing.T) healthTest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(HealthDir(), "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ht healthTest
	if err := yaml.UnmarshalStrict(b, &ht); err != nil {
		t.Fatalf("health_test.yaml: %v", err)
	}
	if len(ht.Tests) == 0 {
		t.Fatal("health_test.yaml has no tests")
	}
	return ht
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &unstructured.Unstructured{Object: obj}
}

// overridesFromArgoCDCM loads the generated argocd-cm snippet into a fake cluster and lets Argo CD's settings
// manager parse it, exactly as the application controller reads argocd-cm.
func overridesFromArgoCDCM(t *testing.T) map[string]argo.ResourceOverride {
	t.Helper()
	b, err := os.ReadFile(HealthPatchPath())
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatalf("%s: %v", HealthPatchPath(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	overrides, err := settingsManager(ctx, &cm).GetResourceOverrides()
	if err != nil {
		t.Fatalf("Argo CD could not read the argocd-cm snippet: %v", err)
	}
	return overrides
}

// TestHealthScript runs every case of health_test.yaml through Argo CD's own Lua runtime three ways: the script
// itself (as upstream's TestLuaHealthScript does), the script found by GetHealthScript under the resource override
// key, and the full controller path (argocd-cm -> settings -> health.GetResourceHealth).
func TestHealthScript(t *testing.T) {
	script := readHealthScript(t)
	ht := readHealthTests(t)
	cmOverrides := overridesFromArgoCDCM(t)

	if got := argo.GetConfigMapKey(readObject(t, filepath.Join(HealthDir(), ht.Tests[0].InputPath)).GroupVersionKind()); got != HealthKey {
		t.Fatalf("Argo CD's override key for ProbeRedirectPolicy is %q, want %q", got, HealthKey)
	}
	cmCurrent := cmOverrides[HealthKey].HealthLua == script
	if !cmCurrent {
		t.Errorf("argocd-cm key %s does not resolve to health.lua (got %d bytes under %q); run `go run ./cmd/gen-argocd-cm`", ArgoCDCMHealthKey, len(cmOverrides[HealthKey].HealthLua), HealthKey)
	}

	seenStatus := map[health.HealthStatusCode]int{}
	seenInput := map[string]bool{}
	for _, tc := range ht.Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			seenInput[filepath.Clean(tc.InputPath)] = true
			seenStatus[tc.HealthStatus.Status]++
			want := tc.HealthStatus
			obj := readObject(t, filepath.Join(HealthDir(), tc.InputPath))
			if obj.GetKind() != "ProbeRedirectPolicy" || obj.GroupVersionKind().Group != "mesh.proberedirect.io" {
				t.Fatalf("%s is a %s, not a ProbeRedirectPolicy", tc.InputPath, obj.GroupVersionKind())
			}

			// 1. The script itself, sandboxed as argocd-cm scripts run by default (no open libs), and with
			// open libs as built-in scripts run.
			for _, openLibs := range []bool{false, true} {
				got, err := argo.LuaVM{UseOpenLibs: openLibs}.ExecuteHealthLua(obj, script)
				if err != nil {
					t.Fatalf("ExecuteHealthLua (useOpenLibs=%v): %v", openLibs, err)
				}
				if *got != want {
					t.Errorf("ExecuteHealthLua (useOpenLibs=%v) = %+v, want %+v", openLibs, *got, want)
				}
			}

			// 2. The resource override key resolves to our script.
			vm := argo.LuaVM{ResourceOverrides: map[string]argo.ResourceOverride{HealthKey: {HealthLua: script}}}
			found, useOpenLibs, err := vm.GetHealthScript(obj)
			if err != nil {
				t.Fatalf("GetHealthScript: %v", err)
			}
			if found != script || useOpenLibs {
				t.Fatalf("GetHealthScript returned another script (useOpenLibs=%v)", useOpenLibs)
			}
			got, err := vm.ExecuteHealthLua(obj, found)
			if err != nil {
				t.Fatalf("ExecuteHealthLua: %v", err)
			}
			if *got != want {
				t.Errorf("override script = %+v, want %+v", *got, want)
			}

			// 3. The controller's path: overrides parsed from the argocd-cm snippet, then gitops-engine's
			// GetResourceHealth (which also handles deletionTimestamp before calling Lua).
			if cmCurrent {
				full, err := health.GetResourceHealth(obj, argo.ResourceHealthOverrides(cmOverrides))
				if err != nil {
					t.Fatalf("GetResourceHealth: %v", err)
				}
				if full == nil || *full != want {
					t.Errorf("GetResourceHealth with the argocd-cm snippet = %+v, want %+v", full, want)
				}
			}

			// Control: without the check Argo CD has no opinion on the policy at all (nil health), so the
			// assertions above are about our script, not some built-in.
			none, err := health.GetResourceHealth(obj, argo.ResourceHealthOverrides(defaults.overrides))
			if err != nil || none != nil {
				t.Errorf("without the check: health %+v, err %v; want nil, nil", none, err)
			}
		})
	}

	// Every testdata file is a case, and every status the script returns is covered.
	files, err := filepath.Glob(filepath.Join(HealthDir(), "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var unused []string
	for _, f := range files {
		rel, _ := filepath.Rel(HealthDir(), f)
		if !seenInput[rel] {
			unused = append(unused, rel)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("testdata files not referenced by health_test.yaml: %v", unused)
	}
	for _, s := range []health.HealthStatusCode{health.HealthStatusHealthy, health.HealthStatusProgressing, health.HealthStatusDegraded, health.HealthStatusSuspended} {
		if seenStatus[s] == 0 {
			t.Errorf("no health_test.yaml case expects %s", s)
		}
	}
}

// TestHealthScriptPendingDeletion checks the one state Argo CD decides before running Lua: a policy being deleted
// (it keeps a finalizer while it restores workloads) is Progressing "Pending deletion".
func TestHealthScriptPendingDeletion(t *testing.T) {
	obj := readObject(t, filepath.Join(HealthDir(), "testdata", "healthy.yaml"))
	obj.SetDeletionTimestamp(nil)
	now := time.Date(2026, 9, 14, 10, 0, 0, 0, time.UTC)
	obj.Object["metadata"].(map[string]any)["deletionTimestamp"] = now.Format(time.RFC3339)
	obj.SetFinalizers([]string{"mesh.proberedirect.io/restore"})
	got, err := health.GetResourceHealth(obj, argo.ResourceHealthOverrides(overridesFromArgoCDCM(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Status != health.HealthStatusProgressing || got.Message != "Pending deletion" {
		t.Fatalf("health of a deleting policy = %+v, want Progressing \"Pending deletion\"", got)
	}
}

// TestArgoCDCMHealthPatch fails when config/argocd/argocd-cm-health-patch.yaml is not what the generator makes from
// health.lua, or when its key does not carry health.lua byte for byte.
func TestArgoCDCMHealthPatch(t *testing.T) {
	script := readHealthScript(t)
	want, err := RenderHealthPatch([]byte(script))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(HealthPatchPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `cd test/argocd && go run ./cmd/gen-argocd-cm`", HealthPatchPath())
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(got, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Name != "argocd-cm" || cm.Labels["app.kubernetes.io/part-of"] != "argocd" {
		t.Errorf("snippet is ConfigMap %s/%s with labels %v; Argo CD only reads argocd-cm labelled app.kubernetes.io/part-of=argocd", cm.Namespace, cm.Name, cm.Labels)
	}
	if len(cm.Data) != 1 || cm.Data[ArgoCDCMHealthKey] != script {
		t.Errorf("snippet data keys %v: want only %s carrying health.lua byte for byte", keys(cm.Data), ArgoCDCMHealthKey)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
