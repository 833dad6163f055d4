package localcluster

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// stage is the part of a kwok Stage these checks read.
type stage struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ResourceRef struct {
			APIGroup string `json:"apiGroup"`
			Kind     string `json:"kind"`
		} `json:"resourceRef"`
		Selector struct {
			MatchExpressions []struct {
				Key      string   `json:"key"`
				Operator string   `json:"operator"`
				Values   []string `json:"values"`
			} `json:"matchExpressions"`
		} `json:"selector"`
		Delay *struct {
			DurationMilliseconds int64 `json:"durationMilliseconds"`
		} `json:"delay"`
		Next struct {
			Event *struct {
				Type, Reason, Message string
			} `json:"event"`
			StatusTemplate string `json:"statusTemplate"`
		} `json:"next"`
		ImmediateNextStage bool `json:"immediateNextStage"`
	} `json:"spec"`
}

const verdictKey = `.metadata.annotations["` + meshdouble.VerdictAnnotation + `"]`

func loadPodStages(t *testing.T) []stage {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "hack", "kwok", "pod-stages.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []stage
	for {
		var s stage
		if err := dec.Decode(&s); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		if s.Kind != "" {
			out = append(out, s)
		}
	}
}

// verdictSelector returns the operator and values a stage applies to the
// verdict annotation.
func verdictSelector(s stage) (string, []string) {
	for _, e := range s.Spec.Selector.MatchExpressions {
		if e.Key == verdictKey {
			return e.Operator, e.Values
		}
	}
	return "", nil
}

// TestPodStagesCoverEveryVerdict keeps hack/kwok/pod-stages.yaml in step
// with meshdouble.Verdicts: every verdict leaves Pending through exactly one
// stage, and each probe failure repeats its kubelet event.
func TestPodStagesCoverEveryVerdict(t *testing.T) {
	g := NewWithT(t)
	stages := loadPodStages(t)
	g.Expect(stages).NotTo(BeEmpty())
	names := map[string]bool{}
	for _, s := range stages {
		g.Expect(s.APIVersion).To(Equal("kwok.x-k8s.io/v1alpha1"))
		g.Expect(s.Kind).To(Equal("Stage"))
		g.Expect(s.Spec.ResourceRef.Kind).To(Equal("Pod"))
		g.Expect(names[s.Metadata.Name]).To(BeFalse(), "duplicate %s", s.Metadata.Name)
		names[s.Metadata.Name] = true
	}

	// Which stage takes a Pending pod with verdict v?
	fromPending := func(v string) []string {
		var out []string
		for _, s := range stages {
			pending := false
			for _, e := range s.Spec.Selector.MatchExpressions {
				if e.Key == ".status.phase" && slices.Contains(e.Values, "Pending") {
					pending = true
				}
			}
			op, vals := verdictSelector(s)
			if pending && ((op == "In" && slices.Contains(vals, v)) || (op == "NotIn" && !slices.Contains(vals, v))) {
				out = append(out, s.Metadata.Name)
			}
		}
		return out
	}
	g.Expect(fromPending("")).To(Equal([]string{"meshdouble-pod-ready"}), "pods without a verdict")
	for _, v := range meshdouble.Verdicts {
		want := "meshdouble-pod-running-unready"
		if v == meshdouble.VerdictPass {
			want = "meshdouble-pod-ready"
		}
		g.Expect(fromPending(string(v))).To(Equal([]string{want}), string(v))
	}

	messages := map[meshdouble.ProbeVerdict]string{
		meshdouble.VerdictReset:     "read: connection reset by peer",
		meshdouble.VerdictStatus500: "HTTP probe failed with statuscode: 500",
		meshdouble.VerdictStatus400: "HTTP probe failed with statuscode: 400",
	}
	for v, msg := range messages {
		name := "meshdouble-probe-" + string(v)
		i := slices.IndexFunc(stages, func(s stage) bool { return s.Metadata.Name == name })
		g.Expect(i).To(BeNumerically(">=", 0), name)
		s := stages[i]
		op, vals := verdictSelector(s)
		g.Expect(op).To(Equal("In"))
		g.Expect(vals).To(Equal([]string{string(v)}))
		g.Expect(s.Spec.Next.Event).NotTo(BeNil())
		g.Expect(s.Spec.Next.Event.Type).To(Equal("Warning"))
		g.Expect(s.Spec.Next.Event.Reason).To(Equal("Unhealthy"))
		g.Expect(s.Spec.Next.Event.Message).To(HavePrefix("Readiness probe failed: "))
		g.Expect(s.Spec.Next.Event.Message).To(HaveSuffix(msg))
		// Repeats: a delay, a status change each time, and re-matching.
		g.Expect(s.Spec.Delay).NotTo(BeNil())
		g.Expect(s.Spec.Delay.DurationMilliseconds).To(BeNumerically(">=", 1000))
		g.Expect(s.Spec.Next.StatusTemplate).To(ContainSubstring("lastProbeTime: {{ Now"))
		g.Expect(s.Spec.ImmediateNextStage).To(BeTrue())
	}
}
