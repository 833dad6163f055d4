//go:build e2e

package olm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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
)

func init() { utilruntime.Must(apiextensionsv1.AddToScheme(testenv.Scheme)) }

// TestBundlePermissionsAreEnoughForAFullReconcile installs the bundle the way OLM does: the
// bundle's manifests, the CSV's service account and permissions, then runs the operator binary
// with that service account's token and the CSV deployment's arguments. A reconcile that needs a
// permission the bundle lacks fails the test, as does any "forbidden" in the operator's log.
func TestBundlePermissionsAreEnoughForAFullReconcile(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	root := testenv.RepoRoot()
	manager := os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(root, "bin", "manager")
	}
	_, err := os.Stat(manager)
	g.Expect(err).NotTo(HaveOccurred(), "run `make build`")

	name := fmt.Sprintf("olm-%d", os.Getpid())
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

	// What OLM creates from the bundle: the operator namespace, the other manifests (CRD, Service,
	// ClusterRoles), the service account, and the CSV's permissions bound to it.
	const operatorNamespace = "operators"
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())
	csvTyped, _ := readCSV(t)
	for file, obj := range readManifests(t) {
		if obj.GetKind() == "ClusterServiceVersion" {
			continue
		}
		if obj.GetKind() == "Service" {
			obj.SetNamespace(operatorNamespace)
		}
		g.Expect(admin.Create(ctx, obj)).To(Succeed(), file)
	}
	g.Eventually(func(g Gomega) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Name: "proberedirectpolicies.mesh.proberedirect.io"}, crd)).To(Succeed())
		g.Expect(crd.Status.Conditions).To(ContainElement(And(HaveField("Type", apiextensionsv1.Established), HaveField("Status", apiextensionsv1.ConditionTrue))))
	}, time.Minute, 200*time.Millisecond).Should(Succeed())

	g.Expect(csvTyped.Spec.Install.Spec.Deployments).To(HaveLen(1))
	deployment := csvTyped.Spec.Install.Spec.Deployments[0]
	serviceAccount := deployment.Spec.Template.Spec.ServiceAccountName
	g.Expect(serviceAccount).NotTo(BeEmpty())
	g.Expect(admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: serviceAccount}})).To(Succeed())
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: operatorNamespace}}
	for i, p := range csvTyped.Spec.Install.Spec.ClusterPermissions {
		g.Expect(p.ServiceAccountName).To(Equal(serviceAccount))
		roleName := fmt.Sprintf("csv-cluster-%d", i)
		g.Expect(admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Rules: p.Rules})).To(Succeed())
		g.Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName}})).To(Succeed())
	}
	for i, p := range csvTyped.Spec.Install.Spec.Permissions {
		g.Expect(p.ServiceAccountName).To(Equal(serviceAccount))
		roleName := fmt.Sprintf("csv-%d", i)
		g.Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: roleName}, Rules: p.Rules})).To(Succeed())
		g.Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: roleName}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}})).To(Succeed())
	}

	// The operator runs with nothing but the service account's token.
	clientset := kubernetes.NewForConfigOrDie(cluster.RESTConfig)
	token, err := clientset.CoreV1().ServiceAccounts(operatorNamespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig := writeTokenKubeconfig(t, cluster, token.Status.Token)
	saConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())

	// No more than needed: the account cannot read Secrets, delete workloads or touch RBAC.
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

	args := deployment.Spec.Template.Spec.Containers[0].Args
	g.Expect(args).To(ContainElement("--leader-elect"))
	logPath := filepath.Join(cluster.Dir, "logs", "operator.log")
	stop, err := localcluster.RunOperator(manager, logPath, append(args,
		"--kubeconfig="+kubeconfig, "--leader-election-namespace="+operatorNamespace,
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
	for _, example := range almExamples(t, csvTyped) {
		example.SetNamespace("shop")
		g.Expect(admin.Create(ctx, example)).To(Succeed())
	}
	policy := &v1alpha1.ProbeRedirectPolicy{}
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "nginx"}, policy)).To(Succeed())
		ready := meta.FindStatusCondition(policy.Status.Conditions, string(v1alpha1.ConditionReady))
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s", ready.Reason, ready.Message)
		g.Expect(policy.Status.Summary.RewrittenProbes).To(Equal(int32(1)))
	}, 3*time.Minute, 250*time.Millisecond).Should(Succeed())

	leases, err := clientset.CoordinationV1().Leases(operatorNamespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leases.Items).NotTo(BeEmpty(), "leader election used the Role from the CSV's permissions")
	events, err := clientset.EventsV1().Events("shop").List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events.Items).To(ContainElement(HaveField("Reason", string(v1alpha1.EventRolloutComplete))))

	log, err := os.ReadFile(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.ToLower(string(log))).NotTo(ContainSubstring("forbidden"), "the operator hit a permission the bundle does not grant; see %s", logPath)
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
