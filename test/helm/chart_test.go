package helmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
	"sigs.k8s.io/yaml"
)

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := LoadChart()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "run `make helm-chart`")
	return ch
}

func renderObjects(t *testing.T, ch *chart.Chart, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := RenderObjects(ch, ReleaseName, Namespace, values)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func kinds(objs []*unstructured.Unstructured) []string {
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(names)
	return names
}

const deploymentName = ReleaseName + "-controller-manager"

func deployment(g Gomega, objs []*unstructured.Unstructured, name string) *appsv1.Deployment {
	u := find(objs, "Deployment", name)
	g.Expect(u).NotTo(BeNil(), "Deployment %s in %v", name, kinds(objs))
	d := &appsv1.Deployment{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d)).To(Succeed())
	return d
}

func managerArgs(g Gomega, objs []*unstructured.Unstructured) []string {
	d := deployment(g, objs, deploymentName)
	g.Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
	return d.Spec.Template.Spec.Containers[0].Args
}

// TestChartLints runs Helm's linter (helm lint) with the default values and with every optional
// object on: no errors, no warnings; the only note is the missing icon.
func TestChartLints(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"default values": nil,
		"everything on": {
			"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
			"prometheusRule": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
			"networkPolicy":  map[string]any{"enabled": true},
			"manager":        map[string]any{"logging": map[string]any{"level": "debug"}, "leaderElection": map[string]any{"namespace": "kube-system"}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			linter := lint.AllWithKubeVersionAndSchemaValidation(ChartDir(), values, Namespace, KubeVersion, false)
			var notes []string
			for _, m := range linter.Messages {
				g.Expect(m.Severity).To(BeNumerically("<=", support.InfoSev), m.Error())
				notes = append(notes, m.Error())
			}
			g.Expect(notes).To(ConsistOf("[INFO] Chart.yaml: icon is recommended"))
		})
	}
}

// TestSchemaRejectsWrongValues: values.schema.json turns a misspelt key or a wrong type into an
// error instead of a silently ignored value.
func TestSchemaRejectsWrongValues(t *testing.T) {
	ch := loadChart(t)
	for _, tt := range []struct {
		path  string
		value any
	}{
		{"manager.concurency", 4},
		{"manager.concurrency", "four"},
		{"manager.concurrency", 0},
		{"metrics.secure", "yes"},
		{"manager.image.pullPolicy", "Sometimes"},
		{"serviceMonitor.enable", true},
		{"manager.leaderElection.elect", true},
		// Values the manager's flags would refuse at start-up, so the pod would crash-loop.
		{"manager.statusPort", 70000},
		{"metrics.port", 0},
		{"manager.unhealthyWindow", "10x"},
		{"manager.eventCoalesce", "-1s"},
		{"manager.eventCoalesce", "2"},
	} {
		t.Run(fmt.Sprintf("%s=%v", tt.path, tt.value), func(t *testing.T) {
			_, err := Render(ch, ReleaseName, Namespace, Set(nil, tt.path, tt.value))
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring("values don't meet the specifications of the schema")))
		})
	}
	// Go durations the manager accepts pass.
	for _, d := range []string{"10m", "1h30m", "1.5s", "500ms"} {
		_, err := Render(ch, ReleaseName, Namespace, Set(nil, "manager.unhealthyWindow", d))
		NewWithT(t).Expect(err).NotTo(HaveOccurred(), d)
	}
}

// kustomizeBuild renders a kustomization with the kustomize that `make kustomize` builds.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	g := NewWithT(t)
	cmd := exec.Command(kustomizeBin(t), "build", filepath.Join(testenv.RepoRoot(), dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	g.Expect(err).NotTo(HaveOccurred(), stderr.String())
	objs, err := Objects(string(out))
	g.Expect(err).NotTo(HaveOccurred())
	return objs
}

func kustomizeBin(t *testing.T) string {
	bin := os.Getenv("KUSTOMIZE")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "kustomize")
	}
	_, err := os.Stat(bin)
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "kustomize is built by `make kustomize`")
	return bin
}

// normalizedFlags reads --name and --name=value as name=value.
func normalizedFlags(args []string) []string {
	var out []string
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok {
			value = "true"
		}
		out = append(out, name+"="+value)
	}
	return out
}

// TestDefaultsInstallWhatConfigDefaultInstalls: with the default values, release name
// probe-redirect-operator and namespace probe-redirect-operator-system, the chart renders the
// objects of config/default (but the Namespace, which is the release's), field for field; only
// the labels are Helm's, and the manager gets every flag spelt out.
func TestDefaultsInstallWhatConfigDefaultInstalls(t *testing.T) {
	g := NewWithT(t)
	rendered := renderObjects(t, loadChart(t), nil)
	want := kustomizeBuild(t, "config/default")
	g.Expect(rendered).To(HaveLen(len(want) - 1))
	for _, w := range want {
		if w.GetKind() == "Namespace" {
			continue
		}
		r := find(rendered, w.GetKind(), w.GetName())
		g.Expect(r).NotTo(BeNil(), "%s %s is not rendered", w.GetKind(), w.GetName())
		g.Expect(r.GetNamespace()).To(Equal(w.GetNamespace()))
		w, r = w.DeepCopy(), r.DeepCopy()
		if w.GetKind() != "CustomResourceDefinition" {
			for k, v := range w.GetLabels() {
				if k != "app.kubernetes.io/managed-by" {
					g.Expect(r.GetLabels()).To(HaveKeyWithValue(k, v), "%s %s", w.GetKind(), w.GetName())
				}
			}
			g.Expect(r.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
			g.Expect(r.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/instance", ReleaseName))
			w.SetLabels(nil)
			r.SetLabels(nil)
		}
		if w.GetKind() == "Deployment" {
			containers, _, _ := unstructured.NestedSlice(w.Object, "spec", "template", "spec", "containers")
			wantArgs, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
			renderedContainers, _, _ := unstructured.NestedSlice(r.Object, "spec", "template", "spec", "containers")
			gotArgs, _, _ := unstructured.NestedStringSlice(renderedContainers[0].(map[string]any), "args")
			g.Expect(normalizedFlags(gotArgs)).To(ContainElements(normalizedFlags(wantArgs)), "config/default's flags")
			g.Expect(normalizedFlags(gotArgs)).To(ContainElements("metrics-secure=true", "enable-http2=false", "root-namespace=istio-system", "status-port=15020", "concurrency=2"),
				"the manager's defaults, spelt out")
			for _, c := range [][]any{containers, renderedContainers} {
				delete(c[0].(map[string]any), "args")
				delete(c[0].(map[string]any), "imagePullPolicy")
			}
			g.Expect(unstructured.SetNestedSlice(w.Object, containers, "spec", "template", "spec", "containers")).To(Succeed())
			g.Expect(unstructured.SetNestedSlice(r.Object, renderedContainers, "spec", "template", "spec", "containers")).To(Succeed())
		}
		g.Expect(r.Object).To(Equal(w.Object), "%s %s differs from config/default's", w.GetKind(), w.GetName())
	}
}

// valueCase sets one value of values.yaml (with others it needs) and says what must change.
type valueCase struct {
	values map[string]any
	check  func(g Gomega, objs []*unstructured.Unstructured)
}

func containerOf(g Gomega, objs []*unstructured.Unstructured) map[string]any {
	u := find(objs, "Deployment", deploymentName)
	g.Expect(u).NotTo(BeNil())
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	return containers[0].(map[string]any)
}

func podSpecOf(g Gomega, objs []*unstructured.Unstructured) map[string]any {
	u := find(objs, "Deployment", deploymentName)
	g.Expect(u).NotTo(BeNil())
	spec, _, _ := unstructured.NestedMap(u.Object, "spec", "template", "spec")
	return spec
}

func hasArg(arg string) func(Gomega, []*unstructured.Unstructured) {
	return func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(managerArgs(g, objs)).To(ContainElement(arg))
	}
}

func podField(field string, want any) func(Gomega, []*unstructured.Unstructured) {
	return func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(podSpecOf(g, objs)).To(HaveKeyWithValue(field, want))
	}
}

// valueCases has a case for every value of the chart (values.schema.json's leaves): each value
// changes the rendered objects, as its case says.
var valueCases = map[string]valueCase{
	"nameOverride": {Set(nil, "nameOverride", "prp"), func(g Gomega, objs []*unstructured.Unstructured) {
		d := deployment(g, objs, ReleaseName+"-prp-controller-manager")
		g.Expect(d.Labels).To(HaveKeyWithValue("app.kubernetes.io/name", "prp"))
		g.Expect(d.Spec.Selector.MatchLabels).To(HaveKeyWithValue("app.kubernetes.io/name", "prp"))
	}},
	"fullnameOverride": {Set(nil, "fullnameOverride", "prp"), func(g Gomega, objs []*unstructured.Unstructured) {
		d := deployment(g, objs, "prp-controller-manager")
		g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal("prp-controller-manager"))
		g.Expect(find(objs, "ClusterRoleBinding", "prp-manager-rolebinding")).NotTo(BeNil())
	}},
	"manager.replicas": {Set(nil, "manager.replicas", 3), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(*deployment(g, objs, deploymentName).Spec.Replicas).To(BeEquivalentTo(3))
	}},
	"manager.image.repository": {Set(nil, "manager.image.repository", "registry.example.com/prp"), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(containerOf(g, objs)).To(HaveKeyWithValue("image", "registry.example.com/prp:v0.1.0"))
	}},
	"manager.image.tag": {Set(nil, "manager.image.tag", "v9.9.9"), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(containerOf(g, objs)).To(HaveKeyWithValue("image", "ghcr.io/proberedirect/probe-redirect-operator:v9.9.9"))
	}},
	"manager.image.digest": {Set(nil, "manager.image.digest", "sha256:0123"), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(containerOf(g, objs)).To(HaveKeyWithValue("image", "ghcr.io/proberedirect/probe-redirect-operator@sha256:0123"))
	}},
	"manager.image.pullPolicy": {Set(nil, "manager.image.pullPolicy", "Always"), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(containerOf(g, objs)).To(HaveKeyWithValue("imagePullPolicy", "Always"))
	}},
	"manager.imagePullSecrets": {Set(nil, "manager.imagePullSecrets", []any{map[string]any{"name": "regcred"}}),
		podField("imagePullSecrets", []any{map[string]any{"name": "regcred"}})},
	"manager.healthProbe.port": {Set(nil, "manager.healthProbe.port", 9091), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(managerArgs(g, objs)).To(ContainElement("--health-probe-bind-address=:9091"))
		c := deployment(g, objs, deploymentName).Spec.Template.Spec.Containers[0]
		g.Expect(c.LivenessProbe.HTTPGet.Port.IntValue()).To(Equal(9091))
		g.Expect(c.ReadinessProbe.HTTPGet.Port.IntValue()).To(Equal(9091))
	}},
	"manager.leaderElection.enabled": {Set(nil, "manager.leaderElection.enabled", false), hasArg("--leader-elect=false")},
	"manager.leaderElection.namespace": {Set(nil, "manager.leaderElection.namespace", "kube-system"), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(managerArgs(g, objs)).To(ContainElement("--leader-election-namespace=kube-system"))
		g.Expect(find(objs, "Role", ReleaseName+"-leader-election-role").GetNamespace()).To(Equal("kube-system"))
		binding := find(objs, "RoleBinding", ReleaseName+"-leader-election-rolebinding")
		g.Expect(binding.GetNamespace()).To(Equal("kube-system"))
		subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
		g.Expect(subjects).To(ConsistOf(HaveKeyWithValue("namespace", Namespace)), "the ServiceAccount stays in the release's namespace")
	}},
	"manager.rootNamespace":       {Set(nil, "manager.rootNamespace", "istio-root"), hasArg("--root-namespace=istio-root")},
	"manager.kumaSystemNamespace": {Set(nil, "manager.kumaSystemNamespace", "kong-mesh-system"), hasArg("--kuma-system-namespace=kong-mesh-system")},
	"manager.statusPort":          {Set(nil, "manager.statusPort", 15021), hasArg("--status-port=15021")},
	"manager.concurrency":         {Set(nil, "manager.concurrency", 7), hasArg("--concurrency=7")},
	"manager.unhealthyWindow":     {Set(nil, "manager.unhealthyWindow", "5m"), hasArg("--unhealthy-window=5m")},
	"manager.eventCoalesce":       {Set(nil, "manager.eventCoalesce", "1s"), hasArg("--event-coalesce=1s")},
	"manager.logging.development": {Set(nil, "manager.logging.development", true), hasArg("--zap-devel")},
	"manager.logging.encoder":     {Set(nil, "manager.logging.encoder", "console"), hasArg("--zap-encoder=console")},
	"manager.logging.level":       {Set(nil, "manager.logging.level", "debug"), hasArg("--zap-log-level=debug")},
	"manager.logging.stacktraceLevel": {Set(nil, "manager.logging.stacktraceLevel", "panic"),
		hasArg("--zap-stacktrace-level=panic")},
	"manager.logging.timeEncoding": {Set(nil, "manager.logging.timeEncoding", "iso8601"), hasArg("--zap-time-encoding=iso8601")},
	"manager.extraArgs": {Set(nil, "manager.extraArgs", []any{"--kubeconfig=/etc/kubeconfig"}), func(g Gomega, objs []*unstructured.Unstructured) {
		args := managerArgs(g, objs)
		g.Expect(args[len(args)-1]).To(Equal("--kubeconfig=/etc/kubeconfig"), "extra arguments come last")
	}},
	// Helm merges maps with the defaults: a value adds to them (null removes a key).
	"manager.resources": {Set(nil, "manager.resources", map[string]any{"requests": map[string]any{"cpu": "100m"}}), func(g Gomega, objs []*unstructured.Unstructured) {
		c := deployment(g, objs, deploymentName).Spec.Template.Spec.Containers[0]
		g.Expect(c.Resources.Requests.Cpu().String()).To(Equal("100m"))
		g.Expect(c.Resources.Limits.Memory().String()).To(Equal("256Mi"), "the default limits stay")
	}},
	"manager.podSecurityContext": {Set(nil, "manager.podSecurityContext", map[string]any{"runAsUser": 65532}), func(g Gomega, objs []*unstructured.Unstructured) {
		sc := deployment(g, objs, deploymentName).Spec.Template.Spec.SecurityContext
		g.Expect(sc.RunAsUser).To(HaveValue(BeEquivalentTo(65532)))
		g.Expect(sc.RunAsNonRoot).To(HaveValue(BeTrue()))
	}},
	"manager.securityContext": {Set(nil, "manager.securityContext", map[string]any{"readOnlyRootFilesystem": nil, "runAsGroup": 65532}), func(g Gomega, objs []*unstructured.Unstructured) {
		sc := deployment(g, objs, deploymentName).Spec.Template.Spec.Containers[0].SecurityContext
		g.Expect(sc.RunAsGroup).To(HaveValue(BeEquivalentTo(65532)))
		g.Expect(sc.ReadOnlyRootFilesystem).To(BeNil())
	}},
	"manager.podLabels": {Set(nil, "manager.podLabels", map[string]any{"team": "mesh"}), func(g Gomega, objs []*unstructured.Unstructured) {
		d := deployment(g, objs, deploymentName)
		g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("team", "mesh"))
		g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("control-plane", "controller-manager"))
	}},
	"manager.podAnnotations": {Set(nil, "manager.podAnnotations", map[string]any{"example.com/owner": "mesh"}), func(g Gomega, objs []*unstructured.Unstructured) {
		d := deployment(g, objs, deploymentName)
		g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("example.com/owner", "mesh"))
		g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("sidecar.istio.io/inject", "false"))
	}},
	"manager.nodeSelector": {Set(nil, "manager.nodeSelector", map[string]any{"kubernetes.io/os": "linux"}),
		podField("nodeSelector", map[string]any{"kubernetes.io/os": "linux"})},
	"manager.tolerations": {Set(nil, "manager.tolerations", []any{map[string]any{"key": "dedicated", "operator": "Exists"}}),
		podField("tolerations", []any{map[string]any{"key": "dedicated", "operator": "Exists"}})},
	"manager.affinity": {Set(nil, "manager.affinity", map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
		"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}}}}}}}),
		func(g Gomega, objs []*unstructured.Unstructured) {
			d := deployment(g, objs, deploymentName)
			g.Expect(d.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms).To(HaveLen(1))
		}},
	"manager.topologySpreadConstraints": {Set(nil, "manager.topologySpreadConstraints", []any{map[string]any{
		"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
		"labelSelector": map[string]any{"matchLabels": map[string]any{"control-plane": "controller-manager"}}}}),
		func(g Gomega, objs []*unstructured.Unstructured) {
			g.Expect(deployment(g, objs, deploymentName).Spec.Template.Spec.TopologySpreadConstraints).To(HaveLen(1))
		}},
	"manager.priorityClassName": {Set(nil, "manager.priorityClassName", "system-cluster-critical"),
		podField("priorityClassName", "system-cluster-critical")},
	"manager.terminationGracePeriodSeconds": {Set(nil, "manager.terminationGracePeriodSeconds", 30),
		podField("terminationGracePeriodSeconds", int64(30))},
	"serviceAccount.create": {Set(Set(nil, "serviceAccount.create", false), "serviceAccount.name", "existing"), func(g Gomega, objs []*unstructured.Unstructured) {
		for _, o := range objs {
			g.Expect(o.GetKind()).NotTo(Equal("ServiceAccount"))
		}
		g.Expect(deployment(g, objs, deploymentName).Spec.Template.Spec.ServiceAccountName).To(Equal("existing"))
		subjects, _, _ := unstructured.NestedSlice(find(objs, "ClusterRoleBinding", ReleaseName+"-manager-rolebinding").Object, "subjects")
		g.Expect(subjects).To(ConsistOf(HaveKeyWithValue("name", "existing")))
	}},
	"serviceAccount.name": {Set(nil, "serviceAccount.name", "prp"), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(find(objs, "ServiceAccount", "prp")).NotTo(BeNil())
		g.Expect(deployment(g, objs, deploymentName).Spec.Template.Spec.ServiceAccountName).To(Equal("prp"))
	}},
	"serviceAccount.annotations": {Set(nil, "serviceAccount.annotations", map[string]any{"example.com/role": "prp"}), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(find(objs, "ServiceAccount", ReleaseName+"-controller-manager").GetAnnotations()).To(HaveKeyWithValue("example.com/role", "prp"))
	}},
	"rbac.aggregatedRoles": {Set(nil, "rbac.aggregatedRoles", false), func(g Gomega, objs []*unstructured.Unstructured) {
		for _, o := range objs {
			g.Expect(o.GetName()).NotTo(HaveSuffix("-admin-role"))
			g.Expect(o.GetName()).NotTo(HaveSuffix("-viewer-role"))
		}
		g.Expect(find(objs, "ClusterRole", ReleaseName+"-manager-role")).NotTo(BeNil())
	}},
	"metrics.enabled": {Set(nil, "metrics.enabled", false), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(managerArgs(g, objs)).To(ContainElement("--metrics-bind-address=0"))
		for _, o := range objs {
			g.Expect(o.GetKind()).NotTo(Equal("Service"))
			g.Expect(o.GetName()).NotTo(ContainSubstring("metrics"))
		}
	}},
	"metrics.port": {Set(nil, "metrics.port", 9443), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(managerArgs(g, objs)).To(ContainElement("--metrics-bind-address=:9443"))
		ports, _, _ := unstructured.NestedSlice(find(objs, "Service", ReleaseName+"-controller-manager-metrics-service").Object, "spec", "ports")
		g.Expect(ports).To(ConsistOf(And(HaveKeyWithValue("port", int64(9443)), HaveKeyWithValue("targetPort", int64(9443)))))
	}},
	"metrics.secure": {Set(nil, "metrics.secure", false), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(managerArgs(g, objs)).To(ContainElement("--metrics-secure=false"))
		ports, _, _ := unstructured.NestedSlice(find(objs, "Service", ReleaseName+"-controller-manager-metrics-service").Object, "spec", "ports")
		g.Expect(ports).To(ConsistOf(HaveKeyWithValue("name", "http")))
		g.Expect(find(objs, "ClusterRole", ReleaseName+"-metrics-auth-role")).To(BeNil(), "no TokenReviews without authentication")
	}},
	"metrics.enableHTTP2": {Set(nil, "metrics.enableHTTP2", true), hasArg("--enable-http2=true")},
	"serviceMonitor.enabled": {Set(nil, "serviceMonitor.enabled", true), func(g Gomega, objs []*unstructured.Unstructured) {
		monitor := find(objs, "ServiceMonitor", ReleaseName+"-controller-manager-metrics-monitor")
		g.Expect(monitor).NotTo(BeNil())
		endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
		g.Expect(endpoints).To(ConsistOf(And(HaveKeyWithValue("scheme", "https"), HaveKey("bearerTokenFile"))))
	}},
	"serviceMonitor.labels": {Set(Set(nil, "serviceMonitor.enabled", true), "serviceMonitor.labels", map[string]any{"release": "prometheus"}), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(find(objs, "ServiceMonitor", ReleaseName+"-controller-manager-metrics-monitor").GetLabels()).To(HaveKeyWithValue("release", "prometheus"))
	}},
	"prometheusRule.enabled": {Set(nil, "prometheusRule.enabled", true), func(g Gomega, objs []*unstructured.Unstructured) {
		rule := find(objs, "PrometheusRule", ReleaseName+"-alerts")
		g.Expect(rule).NotTo(BeNil())
		groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
		g.Expect(groups).NotTo(BeEmpty())
		// The alerts' own Prometheus templates come through Helm as they are.
		raw, err := yaml.Marshal(rule.Object)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(raw)).To(ContainSubstring("{{ $labels.policy }}"))
	}},
	"prometheusRule.labels": {Set(Set(nil, "prometheusRule.enabled", true), "prometheusRule.labels", map[string]any{"release": "prometheus"}), func(g Gomega, objs []*unstructured.Unstructured) {
		g.Expect(find(objs, "PrometheusRule", ReleaseName+"-alerts").GetLabels()).To(HaveKeyWithValue("release", "prometheus"))
	}},
	"networkPolicy.enabled": {Set(nil, "networkPolicy.enabled", true), func(g Gomega, objs []*unstructured.Unstructured) {
		policy := find(objs, "NetworkPolicy", ReleaseName+"-allow-metrics-traffic")
		g.Expect(policy).NotTo(BeNil())
		matchLabels, _, _ := unstructured.NestedStringMap(policy.Object, "spec", "podSelector", "matchLabels")
		g.Expect(deployment(g, objs, deploymentName).Spec.Template.Labels).To(Equal(matchLabels), "it selects the manager's pod")
	}},
}

// schemaLeaves lists the values that values.schema.json describes (every key of values.yaml).
func schemaLeaves(t *testing.T, ch *chart.Chart) []string {
	t.Helper()
	var schema map[string]any
	NewWithT(t).Expect(json.Unmarshal(ch.Schema, &schema)).To(Succeed())
	var leaves []string
	var walk func(prefix string, s map[string]any)
	walk = func(prefix string, s map[string]any) {
		props, ok := s["properties"].(map[string]any)
		if !ok {
			leaves = append(leaves, prefix)
			return
		}
		for key, sub := range props {
			if prefix == "" && key == "global" {
				continue
			}
			path := key
			if prefix != "" {
				path = prefix + "." + key
			}
			walk(path, sub.(map[string]any))
		}
	}
	walk("", schema)
	sort.Strings(leaves)
	return leaves
}

// TestEveryValueChangesTheOutput renders the chart once per value of values.yaml, set to
// something other than its default, and checks the change.
func TestEveryValueChangesTheOutput(t *testing.T) {
	ch := loadChart(t)
	leaves := schemaLeaves(t, ch)
	g := NewWithT(t)
	g.Expect(leaves).To(HaveLen(len(valueCases)), "a value without a case, or a case without a value")
	for _, path := range leaves {
		g.Expect(valueCases).To(HaveKey(path), "values.yaml has %s: add a case to valueCases", path)
	}
	base, err := Render(ch, ReleaseName, Namespace, nil)
	g.Expect(err).NotTo(HaveOccurred())
	for _, path := range leaves {
		t.Run(path, func(t *testing.T) {
			g := NewWithT(t)
			tc := valueCases[path]
			rel, err := Render(ch, ReleaseName, Namespace, tc.values)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rel.Manifest).NotTo(Equal(base.Manifest), "setting %s changes nothing", path)
			objs, err := Objects(rel.Manifest)
			g.Expect(err).NotTo(HaveOccurred())
			tc.check(g, objs)
		})
	}
}

func TestNotesTellHowToUpgradeTheCRD(t *testing.T) {
	g := NewWithT(t)
	rel, err := Render(loadChart(t), ReleaseName, Namespace, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rel.Info.Notes).To(ContainSubstring("kubectl -n " + Namespace + " rollout status deployment/" + deploymentName))
	g.Expect(rel.Info.Notes).To(ContainSubstring("helm show crds <chart> | kubectl apply --server-side --force-conflicts -f -"))
}

// TestChartIsUpToDate regenerates the chart, with the version and image of the committed one,
// and requires the committed dist/chart to be identical.
func TestChartIsUpToDate(t *testing.T) {
	g := NewWithT(t)
	ch := loadChart(t)
	image, _ := ch.Values["manager"].(map[string]any)["image"].(map[string]any)
	ref := image["repository"].(string) + ":" + image["tag"].(string)
	if digest, _ := image["digest"].(string); digest != "" {
		ref = image["repository"].(string) + "@" + digest
	}
	out := filepath.Join(t.TempDir(), "chart")
	cmd := exec.Command("go", "run", "./hack/helmchart", "--kustomize", kustomizeBin(t),
		"--version", ch.Metadata.Version, "--image", ref, "--out", out)
	cmd.Dir = testenv.RepoRoot()
	output, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(output))

	const hint = "dist/chart is stale: run `make helm-chart` and commit dist/chart"
	want, got := readTree(t, out), readTree(t, ChartDir())
	for name, w := range want {
		c, ok := got[name]
		g.Expect(ok).To(BeTrue(), "%s: %s is missing", hint, name)
		g.Expect(string(c)).To(Equal(string(w)), "%s: %s differs", hint, name)
	}
	for name := range got {
		g.Expect(want).To(HaveKey(name), "%s: %s is no longer generated", hint, name)
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	NewWithT(t).Expect(filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = data
		return err
	})).To(Succeed())
	return files
}

// TestCRDIsConfigs: crds/ holds config/crd's CRD, as Helm reads it.
func TestCRDIsConfigs(t *testing.T) {
	g := NewWithT(t)
	ch := loadChart(t)
	crds := ch.CRDObjects()
	g.Expect(crds).To(HaveLen(1))
	g.Expect(crds[0].Filename).To(HaveSuffix("/crds/mesh.proberedirect.io_proberedirectpolicies.yaml"))
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	want := &unstructured.Unstructured{}
	g.Expect(utilyaml.Unmarshal(data, &want.Object)).To(Succeed())
	got := &unstructured.Unstructured{}
	g.Expect(utilyaml.Unmarshal(crds[0].File.Data, &got.Object)).To(Succeed())
	g.Expect(got.Object).To(Equal(want.Object))
	g.Expect(slices.ContainsFunc(ch.Templates, func(f *chart.File) bool { return strings.Contains(string(f.Data), "CustomResourceDefinition") })).
		To(BeFalse(), "the CRD is not also a template")
}
