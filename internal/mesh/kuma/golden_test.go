package kuma

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// fixtures holds Kuma's own injector golden files (kumahq/kuma v2.14.3,
// pkg/plugins/runtime/k8s/webhooks/injector/testdata), relative to this package.
const fixtures = "../../../../shared/fixtures/kuma-inject"

type goldenCase struct {
	Num                 string `json:"num"`
	Title               string `json:"title"`
	Config              string `json:"config"`
	NativeSidecarGolden string `json:"nativeSidecarGolden"`
}

func readFixture(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
}

// readConfig reads the probe settings of an injector config file; absent keys keep Kuma's
// defaults, as the control plane's config loader does.
func readConfig(t *testing.T, name string) InjectorConfig {
	t.Helper()
	var raw struct {
		VirtualProbesEnabled      *bool  `json:"virtualProbesEnabled"`
		VirtualProbesPort         *int32 `json:"virtualProbesPort"`
		ApplicationProbeProxyPort *int32 `json:"applicationProbeProxyPort"`
	}
	readFixture(t, name, &raw)
	cfg := DefaultInjectorConfig()
	if raw.VirtualProbesEnabled != nil {
		cfg.VirtualProbesEnabled = *raw.VirtualProbesEnabled
	}
	if raw.VirtualProbesPort != nil {
		cfg.VirtualProbesPort = *raw.VirtualProbesPort
	}
	if raw.ApplicationProbeProxyPort != nil {
		cfg.ApplicationProbeProxyPort = *raw.ApplicationProbeProxyPort
	}
	return cfg
}

func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == name {
			return &spec.InitContainers[i]
		}
	}
	return nil
}

func TestFixturesResolve(t *testing.T) {
	if _, err := os.Stat(filepath.Join(fixtures, "cases.yaml")); err != nil {
		t.Fatalf("the fixtures path %s does not resolve from this package: %v", fixtures, err)
	}
}

// TestGolden checks every case of cases.yaml against Kuma's own injector output.
func TestGolden(t *testing.T) {
	var list struct {
		Cases []goldenCase `json:"cases"`
	}
	readFixture(t, "cases.yaml", &list)
	if len(list.Cases) == 0 {
		t.Fatal("cases.yaml lists no case")
	}
	for _, tc := range list.Cases {
		t.Run(tc.Num, func(t *testing.T) {
			if tc.Config == "" {
				t.Fatalf("case %s names no config", tc.Num)
			}
			cfg := readConfig(t, tc.Config)
			var input corev1.Pod
			readFixture(t, "inject."+tc.Num+".input.yaml", &input)
			goldens := map[string]bool{"inject." + tc.Num + ".golden.yaml": false}
			if tc.NativeSidecarGolden != "" {
				goldens[tc.NativeSidecarGolden] = true
			}
			mode, err := ProbeModeFor(input.Annotations, cfg)
			if err != nil {
				t.Fatalf("ProbeModeFor: %v", err)
			}
			for name, native := range goldens {
				t.Run(name, func(t *testing.T) {
					var golden corev1.Pod
					readFixture(t, name, &golden)
					checkGolden(t, &input, &golden, mode, native)
				})
			}
		})
	}
}

func checkGolden(t *testing.T, input, golden *corev1.Pod, mode ProbeMode, native bool) {
	t.Helper()
	// The injector's annotations agree with the mode this package predicts.
	switch mode.Kind {
	case ProbeModeProxy:
		if got := ReadProbeProxy(golden.Annotations); got.State != ProbeProxyEnabled || got.Port != mode.Port {
			t.Errorf("golden probe proxy annotation %+v, predicted %+v", got, mode)
		}
	case ProbeModeVirtual, ProbeModeNone:
		if got := ReadProbeProxy(golden.Annotations); got.State != ProbeProxyDisabled {
			t.Errorf("golden probe proxy annotation %+v, predicted %+v", got, mode)
		}
		on, port := virtualProbesOn(golden.Annotations)
		if on != (mode.Kind == ProbeModeVirtual) || (on && port != mode.Port) {
			t.Errorf("golden virtual probes %v on %d, predicted %+v", on, port, mode)
		}
	}

	// (a) Rewrite / RewriteVirtual of every input probe equals the golden probe.
	wantRewritten := map[probes.Key]bool{}
	inputOriginals := map[probes.Key]string{}
	n := 0
	for _, ac := range probes.AppContainers(&input.Spec, ProxyContainerName) {
		gc := findContainer(&golden.Spec, ac.C.Name)
		if gc == nil {
			t.Fatalf("container %q missing from the golden pod", ac.C.Name)
		}
		for _, kind := range probes.Kinds {
			in := probes.ProbeOf(ac.C, kind)
			want := probes.ProbeOf(gc, kind)
			if in == nil {
				if want != nil {
					t.Errorf("%s %s: golden has a probe the input lacks", ac.C.Name, kind)
				}
				continue
			}
			n++
			p, _, _ := probes.Describe(ac.C, ac.Init, kind, in)
			key := p.Key()
			inputOriginals[key] = p.Original
			eligible := !ac.Init || native
			var got *corev1.Probe
			var err error
			switch {
			case !eligible || mode.Kind == ProbeModeNone:
				got = in.DeepCopy()
			case mode.Kind == ProbeModeProxy:
				got, err = Rewrite(ac.C, in, mode.Port)
			case mode.Kind == ProbeModeVirtual:
				got, err = RewriteVirtual(ac.C, in, mode.Port)
			}
			if err != nil {
				t.Fatalf("%s %s: %v", ac.C.Name, kind, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", ac.C.Name, kind, got, want)
			}
			rewritten := !reflect.DeepEqual(in, want)
			wantRewritten[key] = rewritten
			if rewritten && mode.Kind == ProbeModeProxy {
				if target := RewrittenTarget(p, mode.Port); target != describeKubelet(want) {
					t.Errorf("%s %s: RewrittenTarget %q, golden probe is %q", ac.C.Name, kind, target, describeKubelet(want))
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the input pod has no probe")
	}

	// (b) VerifyPod: rewritten exactly where Kuma rewrote; no sidecar on the input.
	v := VerifyPod(golden)
	if !v.SidecarInjected {
		t.Error("VerifyPod(golden): no sidecar found")
	}
	if len(v.Probes) != len(wantRewritten) {
		t.Errorf("VerifyPod(golden) has %d probes, want %d", len(v.Probes), len(wantRewritten))
	}
	for key, rewritten := range wantRewritten {
		pv, ok := v.Probes[key]
		switch {
		case !ok:
			t.Errorf("VerifyPod(golden): no entry for %v", key)
		case pv.Rewritten != rewritten:
			t.Errorf("VerifyPod(golden) %v: Rewritten %v, want %v (reason %s)", key, pv.Rewritten, rewritten, pv.Reason)
		case rewritten && pv.Original != inputOriginals[key]:
			t.Errorf("VerifyPod(golden) %v: Original %q, want %q", key, pv.Original, inputOriginals[key])
		case !rewritten && pv.Reason == "":
			t.Errorf("VerifyPod(golden) %v: not rewritten and no reason", key)
		case !rewritten && mode.Kind == ProbeModeNone && pv.Reason != v1alpha1.StatusReasonProbeProxyDisabled:
			t.Errorf("VerifyPod(golden) %v: reason %s, want ProbeProxyDisabled", key, pv.Reason)
		case !rewritten && mode.Kind != ProbeModeNone && pv.Reason != v1alpha1.StatusReasonInitContainerBeforeSidecar:
			t.Errorf("VerifyPod(golden) %v: reason %s, want InitContainerBeforeSidecar", key, pv.Reason)
		}
	}
	vin := VerifyPod(input)
	if vin.SidecarInjected {
		t.Error("VerifyPod(input): sidecar found")
	}
	for key, pv := range vin.Probes {
		if pv.Rewritten || pv.Reason != v1alpha1.StatusReasonNoSidecar {
			t.Errorf("VerifyPod(input) %v: %+v, want NoSidecar", key, pv)
		}
	}

	// (c) Originals on the golden pod recovers the input's probes.
	analysed, rewritten := Originals(&golden.Spec, golden.Annotations, ProxyPortOf(golden.Annotations))
	count := 0
	for _, r := range wantRewritten {
		if r {
			count++
		}
	}
	if rewritten != count {
		t.Errorf("Originals(golden): %d rewritten, want %d", rewritten, count)
	}
	if len(analysed) != len(inputOriginals) {
		t.Errorf("Originals(golden): %d probes, want %d", len(analysed), len(inputOriginals))
	}
	for _, p := range analysed {
		if want := inputOriginals[p.Key()]; p.Original != want {
			t.Errorf("Originals(golden) %v: %q, want %q", p.Key(), p.Original, want)
		}
	}
}

// describeKubelet is what the kubelet probes for a rewritten probe, in the Original format.
func describeKubelet(pr *corev1.Probe) string {
	c := &corev1.Container{}
	p, _, _ := probes.Describe(c, false, v1alpha1.ProbeLiveness, pr)
	return p.Original
}
