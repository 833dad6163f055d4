package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

var k8sClient client.Client

func TestMain(m *testing.M) {
	env, err := testenv.New()
	if err != nil {
		panic(err)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // a failed start may have left etcd or kube-apiserver running
		panic(err)
	}
	k8sClient, err = client.New(cfg, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// TestAdmissionRejectsInvalidSpecs sends policies as YAML (the way users write them) and checks
// that the API server rejects each bad one with a message a user understands.
func TestAdmissionRejectsInvalidSpecs(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	tests := []struct {
		name       string
		spec       string
		wantErrors []string
	}{
		{name: "selector missing", spec: `{}`,
			wantErrors: []string{"spec.selector: Required value"}},
		{name: "unknown matchExpressions operator", spec: `{selector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}}`,
			wantErrors: []string{"selector.matchExpressions[].operator must be one of In, NotIn, Exists or DoesNotExist"}},
		{name: "In without values", spec: `{selector: {matchExpressions: [{key: app, operator: In}]}}`,
			wantErrors: []string{"selector.matchExpressions[].values must be non-empty when the operator is In or NotIn"}},
		{name: "Exists with values", spec: `{selector: {matchExpressions: [{key: app, operator: Exists, values: [web]}]}}`,
			wantErrors: []string{"selector.matchExpressions[].values must be empty when the operator is Exists or DoesNotExist"}},
		{name: "unknown workload kind", spec: `{selector: {}, workloadKinds: [Job]}`,
			wantErrors: []string{`spec.workloadKinds[0]: Unsupported value: "Job"`, `"Deployment", "StatefulSet", "DaemonSet"`}},
		{name: "empty workload kinds", spec: `{selector: {}, workloadKinds: []}`,
			wantErrors: []string{"spec.workloadKinds: Invalid value", "should have at least 1 items"}},
		{name: "duplicate workload kinds", spec: `{selector: {}, workloadKinds: [Deployment, Deployment]}`,
			wantErrors: []string{`spec.workloadKinds[1]: Duplicate value: "Deployment"`}},
		{name: "exec is not a redirectable probe type", spec: `{selector: {}, probeTypes: [Exec]}`,
			wantErrors: []string{`spec.probeTypes[0]: Unsupported value: "Exec"`}},
		{name: "unknown trigger", spec: `{selector: {}, trigger: Sometimes}`,
			wantErrors: []string{`spec.trigger: Unsupported value: "Sometimes"`, `"StrictMTLS", "Always"`}},
		{name: "maxConcurrent zero", spec: `{selector: {}, rollout: {maxConcurrent: 0}}`,
			wantErrors: []string{"spec.rollout.maxConcurrent: Invalid value: 0", "should be greater than or equal to 1"}},
		{name: "progress deadline too short", spec: `{selector: {}, rollout: {progressDeadlineSeconds: 5}}`,
			wantErrors: []string{"spec.rollout.progressDeadlineSeconds: Invalid value: 5", "should be greater than or equal to 10"}},
		{name: "unknown onDelete", spec: `{selector: {}, onDelete: Delete}`,
			wantErrors: []string{`spec.onDelete: Unsupported value: "Delete"`, `"Keep", "Restore"`}},
		// Label keys and values, checked with Kubernetes' CEL format library (in CRD rules from 1.32).
		{name: "matchLabels label without a value", spec: `{selector: {matchLabels: {app: }}}`,
			wantErrors: []string{"selector.matchLabels must not be empty: a label written without a value (app:) is dropped by the API server"}},
		{name: "empty matchLabels", spec: `{selector: {matchLabels: {}}}`,
			wantErrors: []string{"selector.matchLabels must not be empty"}},
		{name: "empty matchExpressions", spec: `{selector: {matchExpressions: []}}`,
			wantErrors: []string{"selector.matchExpressions must not be empty"}},
		{name: "matchLabels key with a space and !", spec: `{selector: {matchLabels: {"bad key!": web}}}`,
			wantErrors: []string{"selector.matchLabels keys must be label keys"}},
		{name: "matchLabels key with an empty name", spec: `{selector: {matchLabels: {"": web}}}`,
			wantErrors: []string{"selector.matchLabels keys must be label keys"}},
		{name: "matchLabels key prefix not a DNS subdomain", spec: `{selector: {matchLabels: {"Bad_Prefix/app": web}}}`,
			wantErrors: []string{"selector.matchLabels keys must be label keys"}},
		{name: "matchLabels key name of 64 characters", spec: `{selector: {matchLabels: {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": web}}}`,
			wantErrors: []string{"selector.matchLabels keys must be label keys"}},
		{name: "matchLabels key with two slashes", spec: `{selector: {matchLabels: {"a/b/c": web}}}`,
			wantErrors: []string{"selector.matchLabels keys must be label keys"}},
		{name: "matchLabels value with a space", spec: `{selector: {matchLabels: {app: "my web"}}}`,
			wantErrors: []string{"selector.matchLabels values must be label values"}},
		{name: "matchLabels value of 64 characters", spec: `{selector: {matchLabels: {app: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}}`,
			wantErrors: []string{"spec.selector.matchLabels.app: Too long: may not be more than 63 bytes"}},
		{name: "matchLabels value ending in a dash", spec: `{selector: {matchLabels: {app: "web-"}}}`,
			wantErrors: []string{"selector.matchLabels values must be label values"}},
		{name: "matchExpressions key with a space", spec: `{selector: {matchExpressions: [{key: "bad key", operator: Exists}]}}`,
			wantErrors: []string{"selector.matchExpressions[].key must be a label key"}},
		{name: "matchExpressions value with a slash", spec: `{selector: {matchExpressions: [{key: app, operator: In, values: ["a/b"]}]}}`,
			wantErrors: []string{"selector.matchExpressions[].values must be label values"}},
		{name: "lower-case matchExpressions operator", spec: `{selector: {matchExpressions: [{key: app, operator: in, values: [web]}]}}`,
			wantErrors: []string{"selector.matchExpressions[].operator must be one of In, NotIn, Exists or DoesNotExist"}},
		{name: "NotIn without values", spec: `{selector: {matchExpressions: [{key: app, operator: NotIn, values: []}]}}`,
			wantErrors: []string{"selector.matchExpressions[].values must be non-empty when the operator is In or NotIn"}},
		{name: "selector is a string", spec: `{selector: "app=web"}`,
			wantErrors: []string{"spec.selector: Invalid value: \"string\"", "must be of type object"}},
		{name: "four workload kinds", spec: `{selector: {}, workloadKinds: [Deployment, StatefulSet, DaemonSet, Job]}`,
			wantErrors: []string{"spec.workloadKinds: Too many: 4: must have at most 3 items"}},
		{name: "lower-case workload kind", spec: `{selector: {}, workloadKinds: [deployment]}`,
			wantErrors: []string{`spec.workloadKinds[0]: Unsupported value: "deployment"`}},
		{name: "unknown probe type", spec: `{selector: {}, probeTypes: [UDP]}`,
			wantErrors: []string{`spec.probeTypes[0]: Unsupported value: "UDP"`, `"HTTP", "TCP", "GRPC"`}},
		{name: "empty probe types", spec: `{selector: {}, probeTypes: []}`,
			wantErrors: []string{"spec.probeTypes: Invalid value", "should have at least 1 items"}},
		{name: "duplicate probe types", spec: `{selector: {}, probeTypes: [HTTP, HTTP]}`,
			wantErrors: []string{`spec.probeTypes[1]: Duplicate value: "HTTP"`}},
		{name: "lower-case trigger", spec: `{selector: {}, trigger: strictmtls}`,
			wantErrors: []string{`spec.trigger: Unsupported value: "strictmtls"`}},
		{name: "maxConcurrent above 50", spec: `{selector: {}, rollout: {maxConcurrent: 51}}`,
			wantErrors: []string{"spec.rollout.maxConcurrent: Invalid value: 51", "should be less than or equal to 50"}},
		{name: "negative maxConcurrent", spec: `{selector: {}, rollout: {maxConcurrent: -1}}`,
			wantErrors: []string{"spec.rollout.maxConcurrent: Invalid value: -1", "should be greater than or equal to 1"}},
		{name: "maxConcurrent as a word", spec: `{selector: {}, rollout: {maxConcurrent: ten}}`,
			wantErrors: []string{"spec.rollout.maxConcurrent: Invalid value: \"string\"", "must be of type integer"}},
		{name: "progress deadline above a day", spec: `{selector: {}, rollout: {progressDeadlineSeconds: 86401}}`,
			wantErrors: []string{"spec.rollout.progressDeadlineSeconds: Invalid value: 86401", "should be less than or equal to 86400"}},
		{name: "suspend as a word", spec: `{selector: {}, suspend: maybe}`,
			wantErrors: []string{"spec.suspend: Invalid value: \"string\"", "must be of type boolean"}},
		{name: "lower-case onDelete", spec: `{selector: {}, onDelete: restore}`,
			wantErrors: []string{`spec.onDelete: Unsupported value: "restore"`}},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d invalid specs; issue 14 asks for at least 30", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := k8sClient.Create(ctx, policyFromYAML(t, ns, tt.spec))
			g.Expect(err).To(HaveOccurred())
			for _, want := range tt.wantErrors {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}
}

// TestAdmissionDefaults checks that a minimal policy gets the documented defaults.
func TestAdmissionDefaults(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	obj := policyFromYAML(t, ns, `{selector: {matchLabels: {app: web}}}`)
	g.Expect(k8sClient.Create(ctx, obj)).To(Succeed())

	got := &v1alpha1.ProbeRedirectPolicy{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
	g.Expect(got.Spec.WorkloadKinds).To(Equal([]v1alpha1.WorkloadKind{v1alpha1.KindDeployment, v1alpha1.KindStatefulSet, v1alpha1.KindDaemonSet}))
	g.Expect(got.Spec.ProbeTypes).To(Equal([]v1alpha1.ProbeType{v1alpha1.ProbeTypeHTTP, v1alpha1.ProbeTypeTCP, v1alpha1.ProbeTypeGRPC}))
	g.Expect(got.Spec.Trigger).To(Equal(v1alpha1.TriggerStrictMTLS))
	g.Expect(got.Spec.Rollout.MaxConcurrent).To(Equal(int32(1)))
	g.Expect(got.Spec.Rollout.ProgressDeadlineSeconds).To(Equal(int32(600)))
	g.Expect(got.Spec.Rollout.PauseOnFailure).To(HaveValue(BeTrue()))
	g.Expect(got.Spec.Suspend).To(HaveValue(BeFalse()))
	g.Expect(got.Spec.OnDelete).To(Equal(v1alpha1.DeletionPolicyKeep))

	everything := policyFromYAML(t, ns, `{selector: {}}`)
	g.Expect(k8sClient.Create(ctx, everything)).To(Succeed(), "an explicit empty selector selects every workload")
}

// TestSamplesAreAccepted creates every sample in config/samples against the real CRD.
func TestSamplesAreAccepted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "mesh_*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).NotTo(BeEmpty())
	for _, file := range files {
		data, err := os.ReadFile(file)
		g.Expect(err).NotTo(HaveOccurred())
		u := &unstructured.Unstructured{}
		g.Expect(yaml.Unmarshal(data, &u.Object)).To(Succeed(), file)
		u.SetNamespace(newNamespace(t))
		g.Expect(k8sClient.Create(ctx, u)).To(Succeed(), file)
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "validation-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// policyFromYAML builds an unstructured policy, so that fields Go would fill in stay absent.
func policyFromYAML(t *testing.T, ns, spec string) *unstructured.Unstructured {
	t.Helper()
	var specMap map[string]any
	if err := yaml.Unmarshal([]byte(spec), &specMap); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": specMap}}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind("ProbeRedirectPolicy")
	u.SetNamespace(ns)
	u.SetGenerateName("policy-")
	return u
}
