package argocd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/gitops-engine/pkg/diff"
	jsonpatch "github.com/evanphx/json-patch"
	"github.com/go-logr/logr"
	"github.com/proberedirect/probe-redirect-operator/test/argocd/argo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"
)

const (
	appName      = "shop"
	argoManager  = "argocd-controller" // common.ArgoCDSSAManager: Argo CD's manager for syncs and server-side diff
	workloadName = "checkout"
)

var workloadGVRs = map[string]schema.GroupVersionResource{
	"Deployment":  {Group: "apps", Version: "v1", Resource: "deployments"},
	"StatefulSet": {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"DaemonSet":   {Group: "apps", Version: "v1", Resource: "daemonsets"},
}

var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet"}

// templateVariant is how the Git manifest writes spec.template.metadata.annotations.
type templateVariant string

const (
	noAnnotations    templateVariant = "no-template-annotations"
	emptyAnnotations templateVariant = "empty-template-annotations" // `annotations: {}`, argo-cd#3150
	otherAnnotations templateVariant = "other-template-annotations"
)

// gitWorkload is the workload as a Git repository (or a rendered Helm chart) holds it, marked for the Application
// with the default tracking method (a label in v2, an annotation in v3) as the controller marks every target object
// before diffing and applying it.
func gitWorkload(kind, ns string, variant templateVariant) *unstructured.Unstructured {
	templateMeta := "      labels:\n        app: checkout\n        tier: web\n"
	switch variant {
	case emptyAnnotations:
		templateMeta += "      annotations: {}\n"
	case otherAnnotations:
		templateMeta += "      annotations:\n        prometheus.io/scrape: \"true\"\n        prometheus.io/port: \"8080\"\n"
	}
	kindSpec := "  replicas: 2\n"
	switch kind {
	case "StatefulSet":
		kindSpec += "  serviceName: checkout\n"
	case "DaemonSet":
		kindSpec = ""
	}
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: %s
metadata:
  name: %s
  namespace: %s
  labels:
    app: checkout
    app.kubernetes.io/part-of: shop
spec:
%s  selector:
    matchLabels:
      app: checkout
  template:
    metadata:
%s    spec:
      containers:
      - name: checkout
        image: ghcr.io/example/checkout:1.4.2
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          httpGet:
            path: /readyz
            port: 8080
          periodSeconds: 5
        livenessProbe:
          httpGet:
            path: /livez
            port: 8080
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
`, kind, workloadName, ns, kindSpec, templateMeta)
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		panic(err)
	}
	un := &unstructured.Unstructured{Object: obj}
	if err := argo.NewResourceTracking().SetAppInstance(un, defaults.appLabelKey, appName, ns, defaults.trackingMethod, ""); err != nil {
		panic(err)
	}
	return un
}

// Git changes used as controls: each must make every diff path report Modified.
func withImage(obj *unstructured.Unstructured, image string) *unstructured.Unstructured {
	out := obj.DeepCopy()
	containers, _, _ := unstructured.NestedSlice(out.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["image"] = image
	_ = unstructured.SetNestedSlice(out.Object, containers, "spec", "template", "spec", "containers")
	return out
}

func withTemplateAnnotation(obj *unstructured.Unstructured, key, value string) *unstructured.Unstructured {
	out := obj.DeepCopy()
	ann, _, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "metadata", "annotations")
	if ann == nil {
		ann = map[string]string{}
	}
	ann[key] = value
	_ = unstructured.SetNestedStringMap(out.Object, ann, "spec", "template", "metadata", "annotations")
	return out
}

func withoutTemplateAnnotation(obj *unstructured.Unstructured, key string) *unstructured.Unstructured {
	out := obj.DeepCopy()
	unstructured.RemoveNestedField(out.Object, "spec", "template", "metadata", "annotations", key)
	return out
}

// sameTemplate is true when two objects have the same pod template, so no rollout happened between them.
func sameTemplate(a, b *unstructured.Unstructured) bool {
	ta, _, _ := unstructured.NestedMap(a.Object, "spec", "template")
	tb, _, _ := unstructured.NestedMap(b.Object, "spec", "template")
	return reflect.DeepEqual(ta, tb)
}

func templateAnnotations(obj *unstructured.Unstructured) map[string]string {
	ann, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "annotations")
	return ann
}

// syncMode is how Argo CD applies Git to the cluster.
type syncMode string

const (
	// clientSideSync is Argo CD's default: client-side `kubectl apply`, which records
	// kubectl.kubernetes.io/last-applied-configuration.
	clientSideSync syncMode = "client-side-apply"
	// serverSideSync is the ServerSideApply=true sync option: `kubectl apply --server-side --force-conflicts`.
	serverSideSync syncMode = "server-side-apply"
)

// argoSync applies a manifest the way an Argo CD sync does by default: client-side `kubectl apply` through
// gitops-engine's kubectl library (so with kubectl.kubernetes.io/last-applied-configuration), as argocd-controller.
func argoSync(t *testing.T, c *cluster, obj *unstructured.Unstructured) {
	t.Helper()
	argoSyncWith(t, c, obj, clientSideSync)
}

// argoSyncWith applies a manifest as an Argo CD sync does in the given mode (gitops-engine's ApplyResource, as
// sync_context calls it, with manager argocd-controller).
func argoSyncWith(t *testing.T, c *cluster, obj *unstructured.Unstructured, mode syncMode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.argoOps.ApplyResource(ctx, obj.DeepCopy(), cmdutil.DryRunNone, false, true, mode == serverSideSync, argoManager); err != nil {
		t.Fatalf("Argo CD apply of %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

// operatorApply sends what the operator's applyAnnotation sends: a server-side apply of only the pod-template
// annotation, under its field manager, without forcing conflicts.
func operatorApply(t *testing.T, c *cluster, kind, ns string) {
	t.Helper()
	if err := operatorApplyRequest(c, kind, ns, false); err != nil {
		t.Fatalf("operator apply of %s: %v", kind, err)
	}
}

// operatorApplyRequest is the operator's request; force adds ForceOwnership, which the operator sets only when
// retrying a conflict that is about the annotations map alone (controllers: conflictsOnlyOnAnnotationMap).
func operatorApplyRequest(c *cluster, kind, ns string, force bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	template := corev1ac.PodTemplateSpec().WithAnnotations(map[string]string{RewriteAnnotation: "true"})
	opts := metav1.ApplyOptions{FieldManager: OperatorFieldManager, Force: force}
	var err error
	switch kind {
	case "Deployment":
		_, err = c.clientset.AppsV1().Deployments(ns).Apply(ctx, appsv1ac.Deployment(workloadName, ns).WithSpec(appsv1ac.DeploymentSpec().WithTemplate(template)), opts)
	case "StatefulSet":
		_, err = c.clientset.AppsV1().StatefulSets(ns).Apply(ctx, appsv1ac.StatefulSet(workloadName, ns).WithSpec(appsv1ac.StatefulSetSpec().WithTemplate(template)), opts)
	case "DaemonSet":
		_, err = c.clientset.AppsV1().DaemonSets(ns).Apply(ctx, appsv1ac.DaemonSet(workloadName, ns).WithSpec(appsv1ac.DaemonSetSpec().WithTemplate(template)), opts)
	}
	return err
}

// liveObject reads the object back as Argo CD's cluster cache holds it: unstructured, managedFields included.
func liveObject(t *testing.T, c *cluster, gvr schema.GroupVersionResource, name, ns string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	live, err := c.dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return live
}

func createNamespace(t *testing.T, c *cluster, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{}
	ns.Name = name
	if _, err := c.clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ownsAnnotation(live *unstructured.Unstructured, manager string, op metav1.ManagedFieldsOperationType) bool {
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == manager && mf.Operation == op && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), RewriteAnnotation) {
			return true
		}
	}
	return false
}

// recipe is the documented ignoreDifferences recipe, read from config/argocd/ignore-differences-example.yaml:
// the Application's spec.ignoreDifferences and the argocd-cm resource overrides (parsed by Argo CD's settings).
type recipe struct {
	appIgnores  []argo.ResourceIgnoreDifferences
	cmOverrides map[string]argo.ResourceOverride
	syncOptions argo.SyncOptions
}

func documentedRecipe(t *testing.T) recipe {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ArgoCDDir(), "ignore-differences-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("ignore-differences-example.yaml: want 2 YAML documents (Application, argocd-cm), got %d", len(docs))
	}
	var r recipe
	var app argo.Application
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &app); err != nil {
		t.Fatalf("ignore-differences-example.yaml document 1 is not an Application: %v", err)
	}
	r.appIgnores = app.Spec.IgnoreDifferences
	if app.Spec.SyncPolicy != nil {
		r.syncOptions = app.Spec.SyncPolicy.SyncOptions
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &cm); err != nil {
		t.Fatalf("ignore-differences-example.yaml document 2 is not a ConfigMap: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	r.cmOverrides, err = settingsManager(ctx, &cm).GetResourceOverrides()
	if err != nil {
		t.Fatalf("Argo CD could not read the argocd-cm document: %v", err)
	}
	// Both forms must cover the three kinds the operator annotates.
	for _, kind := range workloadKinds {
		found := false
		for _, ig := range r.appIgnores {
			found = found || (ig.Group == "apps" && ig.Kind == kind && len(ig.JQPathExpressions) > 0)
		}
		if !found {
			t.Errorf("Application ignoreDifferences lack an entry for apps/%s", kind)
		}
		if len(r.cmOverrides["apps/"+kind].IgnoreDifferences.JQPathExpressions) == 0 {
			t.Errorf("argocd-cm document lacks resource.customizations.ignoreDifferences.apps_%s", kind)
		}
	}
	if !r.syncOptions.HasOption("RespectIgnoreDifferences=true") {
		t.Error("the Application lacks syncOptions RespectIgnoreDifferences=true")
	}
	return r
}

// perKind builds one ignoreDifferences entry per workload kind.
func perKind(f func(ig *argo.ResourceIgnoreDifferences)) []argo.ResourceIgnoreDifferences {
	var out []argo.ResourceIgnoreDifferences
	for _, kind := range workloadKinds {
		ig := argo.ResourceIgnoreDifferences{Group: "apps", Kind: kind}
		f(&ig)
		out = append(out, ig)
	}
	return out
}

type diffMode int

const (
	legacyDiff     diffMode = iota // Argo CD's default: 3-way diff against last-applied-configuration
	structuredDiff                 // used for Applications that sync with ServerSideApply=true
	serverSideDiff                 // compare option ServerSideDiff=true: dry-run server-side apply
)

// diffConfig builds the diff configuration as controller/state.go CompareAppState does (without the cache).
func diffConfig(c *cluster, ignores []argo.ResourceIgnoreDifferences, overrides map[string]argo.ResourceOverride, mode diffMode) (argo.DiffConfig, error) {
	b := argo.NewDiffConfigBuilder().
		WithDiffSettings(ignores, overrides, false, argo.IgnoreNormalizerOpts{JQExecutionTimeout: time.Second}).
		WithTracking(defaults.appLabelKey, string(defaults.trackingMethod)).
		WithNoCache().
		WithLogger(logr.Discard()).
		WithGVKParser(c.gvkParser).
		WithManager(argoManager).
		WithStructuredMergeDiff(mode == structuredDiff).
		WithServerSideDiff(mode == serverSideDiff)
	if mode == serverSideDiff {
		b = b.WithServerSideDryRunner(diff.NewK8sServerSideDryRunner(c.dryRunApplier))
	}
	return b.Build()
}

func stateDiff(c *cluster, ignores []argo.ResourceIgnoreDifferences, overrides map[string]argo.ResourceOverride, mode diffMode) func(config, live *unstructured.Unstructured) (*diff.DiffResult, error) {
	return func(config, live *unstructured.Unstructured) (*diff.DiffResult, error) {
		cfg, err := diffConfig(c, ignores, overrides, mode)
		if err != nil {
			return nil, err
		}
		r, err := argo.StateDiff(live, config, cfg)
		return &r, err
	}
}

// diffPath is one way Argo CD can compare Git with live, and whether it should report the unchanged Git
// manifest as Modified (OutOfSync) for a template variant. base names the same comparison without any
// ignoreDifferences: an ignore rule must never hide a Git change that base detects.
type diffPath struct {
	name      string
	base      string
	ssa       bool // also meaningful for Applications that sync with ServerSideApply=true
	run       func(config, live *unstructured.Unstructured) (*diff.DiffResult, error)
	outOfSync func(templateVariant) bool
}

func never(templateVariant) bool          { return false }
func onlyEmptyMap(v templateVariant) bool { return v == emptyAnnotations }
func unlessOthers(v templateVariant) bool { return v != otherAnnotations }

// singleKeyPointerSSD is what Server-Side Diff with a jsonPointers entry for the operator's key reports. With v2.14's
// gitops-engine, normalized live keeps `annotations: {}` once the key is removed while predicted live has no map,
// so workloads whose only template annotation is the operator's are OutOfSync. v3.3's gitops-engine applies the
// ignore rules to live and predicted live at the same point, after the dry run (pkg/diff Diff and serverSideDiff
// changed between the two), and reports nothing.
func singleKeyPointerSSD(v templateVariant) bool {
	if argo.Module == argoCDv2 {
		return unlessOthers(v)
	}
	return never(v)
}

const (
	legacyBase     = "argo-cd StateDiff legacy (Argo CD default)"
	structuredBase = "argo-cd StateDiff structured-merge (ServerSideApply=true)"
	serverSideBase = "argo-cd StateDiff server-side diff"
)

func diffPaths(c *cluster, r recipe) []diffPath {
	managedFields := perKind(func(ig *argo.ResourceIgnoreDifferences) {
		ig.ManagedFieldsManagers = []string{OperatorFieldManager}
	})
	singlePointer := perKind(func(ig *argo.ResourceIgnoreDifferences) {
		ig.JSONPointers = []string{"/spec/template/metadata/annotations/" + strings.ReplaceAll(RewriteAnnotation, "/", "~1")}
	})
	cmDefaults := defaults.overrides // what argocd-cm gives every Application when it sets nothing
	return []diffPath{
		{name: "gitops-engine diff.Diff, default options (legacy 3-way)", outOfSync: onlyEmptyMap,
			run: func(config, live *unstructured.Unstructured) (*diff.DiffResult, error) {
				return diff.Diff(config, live, diff.WithLogr(logr.Discard()))
			}},
		// The two building blocks, called directly, skip diff.Diff's remarshal of the Git object, which is what
		// drops `annotations: {}` from it (but not from last-applied): they never see the trap.
		{name: "gitops-engine diff.ThreeWayDiff (raw, no remarshal)", outOfSync: never,
			run: func(config, live *unstructured.Unstructured) (*diff.DiffResult, error) {
				orig, err := diff.GetLastAppliedConfigAnnotation(live)
				if err != nil || orig == nil {
					return nil, fmt.Errorf("live object has no last-applied-configuration: %v", err)
				}
				return diff.ThreeWayDiff(orig, config, live)
			}},
		{name: "gitops-engine diff.TwoWayDiff (raw)", outOfSync: never, run: diff.TwoWayDiff},
		{name: legacyBase, outOfSync: onlyEmptyMap, run: stateDiff(c, nil, cmDefaults, legacyDiff)},
		{name: "argo-cd StateDiff legacy + managedFieldsManagers", base: legacyBase, outOfSync: onlyEmptyMap, run: stateDiff(c, managedFields, cmDefaults, legacyDiff)},
		{name: "argo-cd StateDiff legacy + jsonPointers to the key", base: legacyBase, outOfSync: onlyEmptyMap, run: stateDiff(c, singlePointer, cmDefaults, legacyDiff)},
		{name: "argo-cd StateDiff legacy + recipe (Application)", base: legacyBase, outOfSync: never, run: stateDiff(c, r.appIgnores, cmDefaults, legacyDiff)},
		{name: "argo-cd StateDiff legacy + recipe (argocd-cm)", base: legacyBase, outOfSync: never, run: stateDiff(c, nil, r.cmOverrides, legacyDiff)},
		{name: structuredBase, ssa: true, outOfSync: never, run: stateDiff(c, nil, cmDefaults, structuredDiff)},
		{name: "argo-cd StateDiff structured-merge + recipe (Application)", ssa: true, base: structuredBase, outOfSync: never, run: stateDiff(c, r.appIgnores, cmDefaults, structuredDiff)},
		{name: serverSideBase, ssa: true, outOfSync: never, run: stateDiff(c, nil, cmDefaults, serverSideDiff)},
		{name: "argo-cd StateDiff server-side diff + managedFieldsManagers", ssa: true, base: serverSideBase, outOfSync: never, run: stateDiff(c, managedFields, cmDefaults, serverSideDiff)},
		{name: "argo-cd StateDiff server-side diff + jsonPointers to the key", ssa: true, base: serverSideBase, outOfSync: singleKeyPointerSSD, run: stateDiff(c, singlePointer, cmDefaults, serverSideDiff)},
		{name: "argo-cd StateDiff server-side diff + recipe (Application)", ssa: true, base: serverSideBase, outOfSync: never, run: stateDiff(c, r.appIgnores, cmDefaults, serverSideDiff)},
		{name: "argo-cd StateDiff server-side diff + recipe (argocd-cm)", ssa: true, base: serverSideBase, outOfSync: never, run: stateDiff(c, nil, r.cmOverrides, serverSideDiff)},
	}
}

// explain renders what a diff found as a JSON merge patch from normalized live to predicted live.
func explain(r *diff.DiffResult) string {
	if r == nil || !r.Modified {
		return ""
	}
	p, err := jsonpatch.CreateMergePatch(r.NormalizedLive, r.PredictedLive)
	if err != nil {
		return err.Error()
	}
	return string(p)
}

// TestOperatorAnnotationDoesNotCauseOutOfSync syncs a workload from Git the way Argo CD does, lets the operator
// server-side apply its annotation, and runs Argo CD's diff paths on (Git, live) for each template variant.
func TestOperatorAnnotationDoesNotCauseOutOfSync(t *testing.T) {
	c := startCluster(t)
	r := documentedRecipe(t)
	for _, mode := range []syncMode{clientSideSync, serverSideSync} {
		for _, kind := range workloadKinds {
			for _, variant := range []templateVariant{noAnnotations, emptyAnnotations, otherAnnotations} {
				t.Run(string(mode)+"/"+kind+"/"+string(variant), func(t *testing.T) {
					testOperatorAnnotation(t, c, r, mode, kind, variant)
				})
			}
		}
	}
}

func testOperatorAnnotation(t *testing.T, c *cluster, r recipe, mode syncMode, kind string, variant templateVariant) {
	var paths []diffPath
	for _, p := range diffPaths(c, r) {
		// With ServerSideApply=true there is no last-applied-configuration and Argo CD diffs by structured merge
		// (or server-side diff when enabled), never by the 3-way diff.
		if mode == clientSideSync || p.ssa {
			paths = append(paths, p)
		}
	}
	ns := fmt.Sprintf("%s-%s-%s", map[syncMode]string{clientSideSync: "csa", serverSideSync: "ssa"}[mode], strings.ToLower(kind), variant)
	createNamespace(t, c, ns)
	gvr := workloadGVRs[kind]
	git := gitWorkload(kind, ns, variant)
	argoSyncWith(t, c, git, mode)
	synced := liveObject(t, c, gvr, workloadName, ns)
	if mode == serverSideSync && variant == emptyAnnotations {
		// A server-side-apply sync of `annotations: {}` makes argocd-controller own the template's annotations
		// map as a whole, so the operator's first (unforced) apply of a key inside it conflicts. The operator then
		// retries with ForceOwnership, because the conflict is about the map alone; that works and is stable
		// through later syncs (checked below).
		err := operatorApplyRequest(c, kind, ns, false)
		if err == nil || !strings.Contains(err.Error(), `conflict with "argocd-controller"`) || !strings.Contains(err.Error(), ".spec.template.metadata.annotations") {
			t.Fatalf("operator apply after a ServerSideApply=true sync of `annotations: {}`: err=%v; want a conflict with argocd-controller on .spec.template.metadata.annotations", err)
		}
		t.Logf("operator's first apply (no force): %v", err)
		if err := operatorApplyRequest(c, kind, ns, true); err != nil {
			t.Fatalf("operator apply with ForceOwnership: %v", err)
		}
	} else {
		operatorApply(t, c, kind, ns)
	}
	live := liveObject(t, c, gvr, workloadName, ns)

	if templateAnnotations(live)[RewriteAnnotation] != "true" {
		t.Fatalf("live template annotations %v lack %s", templateAnnotations(live), RewriteAnnotation)
	}
	if !ownsAnnotation(live, OperatorFieldManager, metav1.ManagedFieldsOperationApply) {
		t.Fatalf("live managedFields do not show %s owning the annotation by Apply", OperatorFieldManager)
	}
	if ownsAnnotation(live, argoManager, metav1.ManagedFieldsOperationUpdate) {
		t.Fatalf("%s owns the operator's annotation", argoManager)
	}
	if live.GetGeneration() != synced.GetGeneration()+1 {
		t.Fatalf("operator apply moved generation %d -> %d, want +1 (a template change)", synced.GetGeneration(), live.GetGeneration())
	}

	// Git changes that must show: an image change on every path; template annotation changes on Argo CD's
	// default path, and on every path that its base (no ignore rules) detects them.
	controls := map[string]*unstructured.Unstructured{
		"image change":              withImage(git, "ghcr.io/example/checkout:1.5.0"),
		"added template annotation": withTemplateAnnotation(git, "example.com/team", "payments"),
	}
	if variant == otherAnnotations {
		controls["removed template annotation"] = withoutTemplateAnnotation(git, "prometheus.io/port")
	}
	detected := map[string]map[string]bool{}
	for _, p := range paths {
		res, err := p.run(git.DeepCopy(), live.DeepCopy())
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		want := p.outOfSync(variant)
		verdict := "as expected"
		if res.Modified != want {
			verdict = "UNEXPECTED"
			t.Errorf("%s: Modified=%v, want %v; live->predicted: %s", p.name, res.Modified, want, explain(res))
		}
		detected[p.name] = map[string]bool{}
		var shown []string
		for what, changed := range controls {
			rc, err := p.run(changed.DeepCopy(), live.DeepCopy())
			if err != nil {
				t.Errorf("%s (%s): %v", p.name, what, err)
				continue
			}
			detected[p.name][what] = rc.Modified
			if rc.Modified {
				shown = append(shown, what)
			}
			switch {
			case what == "image change" && !rc.Modified:
				t.Errorf("%s: a Git image change is not Modified", p.name)
			case (p.name == legacyBase || (mode == serverSideSync && p.base == "")) && !rc.Modified:
				t.Errorf("%s: Git %s is not Modified", p.name, what)
			case p.base != "" && rc.Modified != detected[p.base][what]:
				t.Errorf("%s: Git %s Modified=%v, but %v without ignore rules", p.name, what, rc.Modified, detected[p.base][what])
			}
		}
		sort.Strings(shown)
		t.Logf("%-60s Modified=%-5v (%s) %s | Git changes detected: %s", p.name, res.Modified, verdict, explain(res), strings.Join(shown, ", "))
	}

	// A later Argo CD sync (what self-heal does when the app is OutOfSync) keeps the annotation and does
	// not roll the workload: kubectl apply never removes a key it did not apply.
	argoSyncWith(t, c, git, mode)
	resynced := liveObject(t, c, gvr, workloadName, ns)
	if templateAnnotations(resynced)[RewriteAnnotation] != "true" || !sameTemplate(resynced, live) {
		t.Errorf("Argo CD re-sync changed the pod template (a rollout): annotations %v", templateAnnotations(resynced))
	}
	// A sync with the documented recipe and RespectIgnoreDifferences=true is just as harmless.
	if mode == clientSideSync {
		cfg, err := diffConfig(c, r.appIgnores, defaults.overrides, legacyDiff)
		if err != nil {
			t.Fatal(err)
		}
		target, err := respectIgnoreDifferences(resynced.DeepCopy(), git.DeepCopy(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		argoSync(t, c, target)
		respected := liveObject(t, c, gvr, workloadName, ns)
		if templateAnnotations(respected)[RewriteAnnotation] != "true" || !sameTemplate(respected, live) {
			t.Errorf("sync with RespectIgnoreDifferences changed the pod template (a rollout): annotations %v", templateAnnotations(respected))
		}
		// It does write the operator's key into last-applied-configuration (which, being a Deployment
		// annotation, bumps a Deployment's metadata.generation, though nothing rolls).
		if lastApplied, _ := diff.GetLastAppliedConfigAnnotation(respected); lastApplied == nil || templateAnnotations(lastApplied)[RewriteAnnotation] != "true" {
			t.Errorf("expected RespectIgnoreDifferences to copy the live key into last-applied-configuration")
		}
		if res, err := argo.StateDiff(respected, git.DeepCopy(), cfg); err != nil || res.Modified {
			t.Errorf("after a sync with RespectIgnoreDifferences the diff with the recipe says Modified=%v (err %v)", res.Modified, err)
		}
	}

	defaultDiff, wantModified := legacyDiff, onlyEmptyMap(variant)
	if mode == serverSideSync {
		defaultDiff, wantModified = structuredDiff, false
	}
	res, err := stateDiff(c, nil, defaults.overrides, defaultDiff)(git.DeepCopy(), resynced)
	if err != nil {
		t.Fatal(err)
	}
	if res.Modified != wantModified {
		t.Errorf("after re-sync the default diff says Modified=%v, want %v", res.Modified, wantModified)
	}
}

// respectIgnoreDifferences is what a sync with RespectIgnoreDifferences=true applies instead of the Git object.
// It copies controller/sync.go normalizeTargetResources (with getMergePatch and applyMergePatch), which is unexported
// and the same in argo-cd v2.14.21 and v3.3.10, for one object; argo.Normalize is Argo CD's own.
func respectIgnoreDifferences(live, target *unstructured.Unstructured, cfg argo.DiffConfig) (*unstructured.Unstructured, error) {
	normalized, err := argo.Normalize([]*unstructured.Unstructured{live}, []*unstructured.Unstructured{target}, cfg)
	if err != nil {
		return nil, err
	}
	normalizedTarget := normalized.Targets[0]
	versionedObject, err := scheme.Scheme.New(normalizedTarget.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(versionedObject)
	if err != nil {
		return nil, err
	}
	normalizedLiveJSON, err := normalized.Lives[0].MarshalJSON()
	if err != nil {
		return nil, err
	}
	liveJSON, err := live.MarshalJSON()
	if err != nil {
		return nil, err
	}
	livePatch, err := strategicpatch.CreateThreeWayMergePatch(liveJSON, liveJSON, normalizedLiveJSON, meta, true)
	if err != nil {
		return nil, err
	}
	targetJSON, err := normalizedTarget.MarshalJSON()
	if err != nil {
		return nil, err
	}
	patchedJSON, err := strategicpatch.StrategicMergePatch(targetJSON, livePatch, versionedObject)
	if err != nil {
		return nil, err
	}
	patched := &unstructured.Unstructured{}
	if _, _, err := unstructured.UnstructuredJSONScheme.Decode(patchedJSON, nil, patched); err != nil {
		return nil, err
	}
	return patched, nil
}

// TestRespectIgnoreDifferencesWhenGitHandsTheAnnotationOver covers the case the sync option is for: Git used to set
// the annotation itself (so it is in last-applied-configuration), a policy now manages it, and the key is removed
// from Git. A plain sync deletes it (a rollout, and another when the operator adds it back); a sync with the
// documented recipe and RespectIgnoreDifferences=true keeps it.
func TestRespectIgnoreDifferencesWhenGitHandsTheAnnotationOver(t *testing.T) {
	c := startCluster(t)
	r := documentedRecipe(t)
	gvr := workloadGVRs["Deployment"]
	setup := func(ns string) (gitNow, live *unstructured.Unstructured) {
		createNamespace(t, c, ns)
		before := withTemplateAnnotation(gitWorkload("Deployment", ns, otherAnnotations), RewriteAnnotation, "true")
		argoSync(t, c, before)
		operatorApply(t, c, "Deployment", ns) // same value: the operator co-owns the key
		return gitWorkload("Deployment", ns, otherAnnotations), liveObject(t, c, gvr, workloadName, ns)
	}

	t.Run("plain sync removes the annotation", func(t *testing.T) {
		gitNow, live := setup("handover-plain-sync")
		res, err := stateDiff(c, nil, defaults.overrides, legacyDiff)(gitNow.DeepCopy(), live.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Modified {
			t.Error("default diff: removing the key from Git is not Modified")
		}
		t.Logf("default diff: Modified=%v %s", res.Modified, explain(res))
		argoSync(t, c, gitNow)
		after := liveObject(t, c, gvr, workloadName, live.GetNamespace())
		if _, ok := templateAnnotations(after)[RewriteAnnotation]; ok || sameTemplate(after, live) {
			t.Errorf("plain sync: annotations %v; want the key deleted (a template change, so a rollout)", templateAnnotations(after))
		}
	})

	t.Run("RespectIgnoreDifferences keeps it", func(t *testing.T) {
		gitNow, live := setup("handover-respect-ignore")
		cfg, err := diffConfig(c, r.appIgnores, defaults.overrides, legacyDiff)
		if err != nil {
			t.Fatal(err)
		}
		res, err := argo.StateDiff(live.DeepCopy(), gitNow.DeepCopy(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Modified {
			t.Errorf("diff with the recipe: Modified, %s", explain(&res))
		}
		target, err := respectIgnoreDifferences(live.DeepCopy(), gitNow.DeepCopy(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if templateAnnotations(target)[RewriteAnnotation] != "true" {
			t.Fatalf("RespectIgnoreDifferences target lacks the live key: %v", templateAnnotations(target))
		}
		argoSync(t, c, target)
		after := liveObject(t, c, gvr, workloadName, live.GetNamespace())
		if templateAnnotations(after)[RewriteAnnotation] != "true" || !sameTemplate(after, live) {
			t.Errorf("sync with RespectIgnoreDifferences: annotations %v; want the key kept and the template unchanged (no rollout)", templateAnnotations(after))
		}
		res, err = argo.StateDiff(after, gitNow.DeepCopy(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Modified {
			t.Errorf("after the sync the diff with the recipe is Modified: %s", explain(&res))
		}
	})
}
