package helmtest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// prometheusOperatorVersion is the Prometheus Operator whose ServiceMonitor CRD the API server
// gets, so that the chart's optional ServiceMonitor can be created.
const prometheusOperatorVersion = "v0.85.0"

// serviceMonitorCRD is the ServiceMonitor and PrometheusRule CRDs from the Prometheus Operator's module.
func serviceMonitorCRD(t *testing.T) []string {
	t.Helper()
	g := NewWithT(t)
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/prometheus-operator/prometheus-operator@"+prometheusOperatorVersion)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	g.Expect(err).NotTo(HaveOccurred(), "downloading the Prometheus Operator module")
	var module struct{ Dir string }
	g.Expect(json.Unmarshal(out, &module)).To(Succeed())
	var paths []string
	for _, name := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		path := filepath.Join(module.Dir, "example", "prometheus-operator-crd", name)
		_, err = os.Stat(path)
		g.Expect(err).NotTo(HaveOccurred())
		paths = append(paths, path)
	}
	return paths
}

// startAPIServer starts etcd and kube-apiserver (bin/, as envtest) with only the ServiceMonitor
// CRD: the chart brings its own. It returns an admin client and a kubeconfig file for Helm.
func startAPIServer(t *testing.T) (client.Client, string) {
	t.Helper()
	g := NewWithT(t)
	assets, err := testenv.AssetsDir()
	g.Expect(err).NotTo(HaveOccurred())
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: serviceMonitorCRD(t), ErrorIfPathMissing: true},
	}
	cfg, err := env.Start()
	t.Cleanup(func() { _ = env.Stop() }) // also after a failed start, which may leave processes behind
	g.Expect(err).NotTo(HaveOccurred())
	user, err := env.AddUser(envtest.User{Name: "helm", Groups: []string{"system:masters"}}, cfg)
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := user.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(WriteFile(path, kubeconfig)).To(Succeed())
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	return admin, path
}

// install runs Helm's install action against the API server, as `helm install --create-namespace`.
func install(t *testing.T, kubeconfig, name, namespace string, values map[string]any) *release.Release {
	t.Helper()
	g := NewWithT(t)
	cfg, err := ActionConfig(kubeconfig, namespace, t.Logf)
	g.Expect(err).NotTo(HaveOccurred())
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace, in.Timeout = name, namespace, true, time.Minute
	rel, err := in.RunWithContext(context.Background(), loadChart(t), values)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rel.Info.Status).To(Equal(release.StatusDeployed))
	return rel
}

// TestChartInstallsIntoAPIServer installs the chart with Helm's install action into a real
// kube-apiserver: with the default values (the CRD from crds/, then the rest), and with every
// optional object on. Then it creates, with server-side dry run, the objects the chart renders
// for each value case of TestEveryValueChangesTheOutput, so that the API server validates them
// all.
func TestChartInstallsIntoAPIServer(t *testing.T) {
	ctx := context.Background()
	admin, kubeconfig := startAPIServer(t)

	t.Run("default values", func(t *testing.T) {
		g := NewWithT(t)
		rel := install(t, kubeconfig, ReleaseName, Namespace, nil)
		objs, err := Objects(rel.Manifest)
		g.Expect(err).NotTo(HaveOccurred())
		for _, o := range objs {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(o.GroupVersionKind())
			g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(o), live)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
			g.Expect(live.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
		}
		d := &appsv1.Deployment{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: deploymentName}, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal(deploymentName))

		// The CRD came from crds/: a policy from config/samples is accepted.
		samples := kustomizeBuild(t, "config/samples")
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: samples[0].GetNamespace()}})).To(Succeed())
		for _, s := range samples {
			g.Expect(admin.Create(ctx, s)).To(Succeed())
		}
	})

	t.Run("every optional object", func(t *testing.T) {
		g := NewWithT(t)
		values := Set(Set(Set(Set(nil, "serviceMonitor.enabled", true), "prometheusRule.enabled", true), "networkPolicy.enabled", true), "manager.leaderElection.namespace", "kube-system")
		rel := install(t, kubeconfig, "prp", "prp", values)
		objs, err := Objects(rel.Manifest)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(kinds(objs)).To(ContainElements("NetworkPolicy/prp-probe-redirect-operator-allow-metrics-traffic",
			"ServiceMonitor/prp-probe-redirect-operator-controller-manager-metrics-monitor", "PrometheusRule/prp-probe-redirect-operator-alerts"))
		role := &rbacv1.Role{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "prp-probe-redirect-operator-leader-election-role"}, role)).To(Succeed())
	})

	t.Run("every value case, dry run", func(t *testing.T) {
		g := NewWithT(t)
		const ns = "helm-cases"
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		ch := loadChart(t)
		nonName := regexp.MustCompile(`[^a-z0-9]+`)
		for path, tc := range valueCases {
			name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(path), "-"), "-")
			objs, err := RenderObjects(ch, name, ns, tc.values)
			g.Expect(err).NotTo(HaveOccurred(), path)
			for _, o := range objs {
				if o.GetKind() == "CustomResourceDefinition" {
					continue
				}
				g.Expect(admin.Create(ctx, o, client.DryRunAll)).To(Succeed(), "%s: %s %s", path, o.GetKind(), o.GetName())
			}
		}
	})
}
