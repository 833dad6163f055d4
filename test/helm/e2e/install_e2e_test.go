//go:build e2e

// Package e2e installs dist/chart with Helm's install action into a local control plane
// (test/localcluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes)
// and runs the operator with the chart's ServiceAccount and RBAC.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"

	helmtest "github.com/proberedirect/probe-redirect-operator/test/helm"
)

func init() { utilruntime.Must(apiextensionsv1.AddToScheme(testenv.Scheme)) }

// TestHelmInstallRunsTheOperator installs the chart as `helm install --create-namespace --wait`
// does, into a local control plane: Helm creates the CRD from crds/, the RBAC and the manager
// Deployment, and waits until kwok reports the manager's pod Ready on a fake node. kwok runs no
// containers, so the operator itself then runs as a process, authenticated as the chart's
// ServiceAccount, with the rendered Deployment's arguments: a full reconcile that needs a
// permission the chart does not grant fails the test, as does any "forbidden" in its log.
// Finally helm uninstall removes the release and leaves the CRD.
func TestHelmInstallRunsTheOperator(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	root := testenv.RepoRoot()
	manager := os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(root, "bin", "manager")
	}
	_, err := os.Stat(manager)
	g.Expect(err).NotTo(HaveOccurred(), "run `make build`")

	name := fmt.Sprintf("helm-%d", os.Getpid())
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		Name: name, Dir: filepath.Join(root, ".local", "clusters", name),
		Injector:      &localcluster.InjectorOptions{},
		KwokStagesDir: os.Getenv("KWOK_STAGES_DIR"),
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		g.Expect(cluster.Stop()).To(Succeed())
		if !t.Failed() {
			_ = os.RemoveAll(cluster.Dir)
		}
	})
	admin, err := client.New(cluster.RESTConfig, client.Options{Scheme: testenv.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	clientset := kubernetes.NewForConfigOrDie(cluster.RESTConfig)

	// helm install probe-redirect-operator dist/chart -n probe-redirect-operator-system --create-namespace --wait
	const namespace = helmtest.Namespace
	cfg, err := helmtest.ActionConfig(cluster.Kubeconfig, namespace, t.Logf)
	g.Expect(err).NotTo(HaveOccurred())
	ch, err := helmtest.LoadChart()
	g.Expect(err).NotTo(HaveOccurred())
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace = helmtest.ReleaseName, namespace, true
	install.Wait, install.Timeout = true, 3*time.Minute
	started := time.Now()
	rel, err := install.RunWithContext(ctx, ch, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rel.Info.Status).To(Equal(release.StatusDeployed))
	t.Logf("helm install --wait took %s", time.Since(started).Round(time.Millisecond))

	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Name: "proberedirectpolicies.mesh.proberedirect.io"}, crd)).To(Succeed())
	g.Expect(crd.Status.Conditions).To(ContainElement(And(HaveField("Type", apiextensionsv1.Established), HaveField("Status", apiextensionsv1.ConditionTrue))))

	// The Deployment is available: its pod was scheduled on a kwok node and reported Ready.
	objs, err := helmtest.Objects(rel.Manifest)
	g.Expect(err).NotTo(HaveOccurred())
	var rendered *appsv1.Deployment
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			rendered = &appsv1.Deployment{}
			g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(o), rendered)).To(Succeed())
		}
	}
	g.Expect(rendered).NotTo(BeNil())
	g.Expect(rendered.Status.AvailableReplicas).To(Equal(int32(1)))
	pods := &corev1.PodList{}
	g.Expect(admin.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels(rendered.Spec.Selector.MatchLabels))).To(Succeed())
	g.Expect(pods.Items).To(HaveLen(1))
	g.Expect(pods.Items[0].Spec.NodeName).To(HavePrefix("kwok-node-"))
	g.Expect(pods.Items[0].Status.Phase).To(Equal(corev1.PodRunning))

	// The operator, with nothing but the chart's ServiceAccount.
	serviceAccount := rendered.Spec.Template.Spec.ServiceAccountName
	token, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig := writeTokenKubeconfig(t, cluster, token.Status.Token)
	saConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	saClient := kubernetes.NewForConfigOrDie(saConfig)
	for _, attrs := range []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "secrets", Namespace: "default"},
		{Verb: "list", Resource: "secrets"},
		{Verb: "delete", Group: "apps", Resource: "deployments", Namespace: "default"},
		{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "default"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "create", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	} {
		review, err := saClient.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(review.Status.Allowed).To(BeFalse(), "%s %s/%s must be denied", attrs.Verb, attrs.Group, attrs.Resource)
	}

	// The Deployment's arguments; out of the cluster the process also needs a kubeconfig, the
	// Lease's namespace (in a pod it is the pod's) and loopback ports.
	args := rendered.Spec.Template.Spec.Containers[0].Args
	g.Expect(args).To(ContainElements("--leader-elect=true", "--metrics-secure=true", "--root-namespace=istio-system"))
	logPath := filepath.Join(cluster.Dir, "logs", "operator.log")
	stop, err := localcluster.RunOperator(manager, logPath, append(args,
		"--kubeconfig="+kubeconfig, "--leader-election-namespace="+namespace,
		"--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0")...)
	g.Expect(err).NotTo(HaveOccurred())
	defer stop()

	// A full reconcile: PeerAuthentication, workload annotation, a real rollout, verification on the
	// live pods, status, Events.
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}})).To(Succeed())
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	g.Expect(admin.Create(ctx, pa)).To(Succeed())
	g.Expect(admin.Create(ctx, nginxDeployment("shop"))).To(Succeed())
	policy := &v1alpha1.ProbeRedirectPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "nginx"},
		Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}}},
	}
	g.Expect(admin.Create(ctx, policy)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		ready := meta.FindStatusCondition(policy.Status.Conditions, string(v1alpha1.ConditionReady))
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s", ready.Reason, ready.Message)
		g.Expect(policy.Status.Summary.RewrittenProbes).To(Equal(int32(1)))
	}, 3*time.Minute, 250*time.Millisecond).Should(Succeed())

	leases, err := clientset.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leases.Items).To(ContainElement(HaveField("ObjectMeta.Name", "probe-redirect-operator.proberedirect.io")),
		"leader election used the chart's Role")
	events, err := clientset.EventsV1().Events("shop").List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events.Items).To(ContainElement(HaveField("Reason", string(v1alpha1.EventRolloutComplete))))
	stop()
	log, err := os.ReadFile(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.ToLower(string(log))).NotTo(ContainSubstring("forbidden"), "the operator hit a permission the chart does not grant; see %s", logPath)

	// helm uninstall: the release's objects go, the CRD (and so the policies) stay.
	_, err = action.NewUninstall(cfg).Run(helmtest.ReleaseName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(rendered), &appsv1.Deployment{})).To(MatchError(ContainSubstring("not found")))
	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
}

func nginxDeployment(ns string) *appsv1.Deployment {
	replicas := int32(1)
	labels := map[string]string{"app": "nginx"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nginx"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "nginx", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt(80)}}},
			}}}},
		},
	}
}

// writeTokenKubeconfig writes a kubeconfig that authenticates with token only.
func writeTokenKubeconfig(t *testing.T, cluster *localcluster.Cluster, token string) string {
	t.Helper()
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.APIServerURL, CertificateAuthorityData: cluster.CABundle}
	config.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["operator"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "operator"}
	config.CurrentContext = "operator"
	path := filepath.Join(cluster.Dir, "operator.kubeconfig")
	NewWithT(t).Expect(clientcmd.WriteToFile(*config, path)).To(Succeed())
	return path
}

func ptrTo[T any](v T) *T { return &v }
