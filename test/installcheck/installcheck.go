// Package installcheck holds what the end-to-end tests of the install paths (the OLM bundle in
// test/olm, the Helm chart in test/helm/e2e) have in common: a local control plane, a kubeconfig
// that authenticates as the install's ServiceAccount and nothing more, and a full reconcile by the
// operator binary with only that account's permissions.
package installcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// Manager is the operator binary the tests run: $MANAGER, else bin/manager. A missing binary
// fails t.
func Manager(t *testing.T) string {
	t.Helper()
	manager := os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(testenv.RepoRoot(), "bin", "manager")
	}
	_, err := os.Stat(manager)
	gomega.NewWithT(t).Expect(err).NotTo(gomega.HaveOccurred(), "run `make build`")
	return manager
}

// Cluster starts a local control plane named <prefix>-<pid> with Istio's injector and kwok's
// stages from $KWOK_STAGES_DIR, and returns it with an admin client and clientset. It is stopped
// when t ends, and its folder removed when t passed.
func Cluster(t *testing.T, prefix string) (*localcluster.Cluster, client.Client, kubernetes.Interface) {
	t.Helper()
	g := gomega.NewWithT(t)
	name := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	cluster, err := localcluster.Start(context.Background(), localcluster.Options{
		Name: name, Dir: filepath.Join(testenv.RepoRoot(), ".local", "clusters", name),
		Injector:      &localcluster.InjectorOptions{},
		KwokStagesDir: os.Getenv("KWOK_STAGES_DIR"),
	})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	t.Cleanup(func() {
		g.Expect(cluster.Stop()).To(gomega.Succeed())
		if !t.Failed() {
			_ = os.RemoveAll(cluster.Dir)
		}
	})
	admin, err := client.New(cluster.RESTConfig, client.Options{Scheme: testenv.Scheme})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	return cluster, admin, kubernetes.NewForConfigOrDie(cluster.RESTConfig)
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as namespace/serviceAccount
// with a token only, and checks that the account can do no more than the operator needs: it
// cannot read Secrets, create or delete workloads, create ClusterRoles or CRDs.
func ServiceAccountKubeconfig(t *testing.T, cluster *localcluster.Cluster, clientset kubernetes.Interface, namespace, serviceAccount string) string {
	t.Helper()
	g := gomega.NewWithT(t)
	ctx := context.Background()
	kubeconfig, err := TokenKubeconfig(ctx, cluster, clientset, namespace, serviceAccount, "operator")
	g.Expect(err).NotTo(gomega.HaveOccurred())

	saConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	g.Expect(err).NotTo(gomega.HaveOccurred())
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
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(review.Status.Allowed).To(gomega.BeFalse(), "%s %s/%s must be denied", attrs.Verb, attrs.Group, attrs.Resource)
	}
	return kubeconfig
}

// Reconcile is a full reconcile by the operator binary with one install's permissions.
type Reconcile struct {
	// Manager is the binary; Args the install's arguments; Kubeconfig authenticates as the
	// install's ServiceAccount (ServiceAccountKubeconfig); LeaseNamespace is where the
	// leader-election Lease goes (in a pod it is the pod's namespace).
	Manager, Kubeconfig, LeaseNamespace string
	Args                                []string
	// Policies are the ProbeRedirectPolicies to create in namespace Namespace (their namespace is
	// set); Policy names the one that must become Ready.
	Policies []client.Object
	Policy   string
	// Grants names what granted the permissions, for the failure message ("the bundle").
	Grants string
}

// FullReconcile runs the operator as r says and has it do everything: a namespace in the mesh
// under STRICT mTLS, nginx's HTTP readiness probe, the policy annotates it, the Deployment rolls
// out, the probe is verified as rewritten on the live pods, and RolloutComplete is recorded.
// It stops the operator and fails t when its log shows a "forbidden". It returns the Ready policy.
func FullReconcile(t *testing.T, cluster *localcluster.Cluster, admin client.Client, clientset kubernetes.Interface, r Reconcile) *v1alpha1.ProbeRedirectPolicy {
	t.Helper()
	g := gomega.NewWithT(t)
	ctx := context.Background()
	logPath := filepath.Join(cluster.Dir, "logs", "operator.log")
	stop, err := localcluster.RunOperator(r.Manager, logPath, append(r.Args,
		"--kubeconfig="+r.Kubeconfig, "--leader-election-namespace="+r.LeaseNamespace,
		"--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0")...)
	g.Expect(err).NotTo(gomega.HaveOccurred(), "starting the operator as %s allows; see %s", r.Grants, logPath)
	defer stop()

	const ns = "shop"
	// The namespace may exist already: a namespace-scoped install grants its Roles there first.
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	_, err = controllerutil.CreateOrUpdate(ctx, admin, namespace, func() error {
		if namespace.Labels == nil {
			namespace.Labels = map[string]string{}
		}
		namespace.Labels["istio-injection"] = "enabled"
		return nil
	})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	g.Expect(admin.Create(ctx, pa)).To(gomega.Succeed())
	g.Expect(admin.Create(ctx, nginxDeployment(ns))).To(gomega.Succeed())
	for _, p := range r.Policies {
		p.SetNamespace(ns)
		g.Expect(admin.Create(ctx, p)).To(gomega.Succeed())
	}
	policy := &v1alpha1.ProbeRedirectPolicy{}
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: r.Policy}, policy)).To(gomega.Succeed())
		ready := meta.FindStatusCondition(policy.Status.Conditions, string(v1alpha1.ConditionReady))
		g.Expect(ready).NotTo(gomega.BeNil())
		g.Expect(ready.Status).To(gomega.Equal(metav1.ConditionTrue), "%s: %s", ready.Reason, ready.Message)
		g.Expect(policy.Status.Summary.RewrittenProbes).To(gomega.Equal(int32(1)))
	}, 3*time.Minute, 250*time.Millisecond).Should(gomega.Succeed(), "policy %s/%s becoming Ready with one rewritten probe; see %s", ns, r.Policy, logPath)
	// The Event follows the status write that made the policy Ready.
	g.Eventually(func(g gomega.Gomega) {
		events, err := clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(events.Items).To(gomega.ContainElement(gomega.HaveField("Reason", string(v1alpha1.EventRolloutComplete))))
	}, 30*time.Second, 250*time.Millisecond).Should(gomega.Succeed(), "the operator recorded RolloutComplete with what %s grants; see %s", r.Grants, logPath)

	stop()
	log, err := os.ReadFile(logPath)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(strings.ToLower(string(log))).NotTo(gomega.ContainSubstring("forbidden"), "the operator hit a permission %s does not grant; see %s", r.Grants, logPath)
	g.Expect(string(log)).NotTo(gomega.ContainSubstring("Failed to list policies"), "the operator looked outside the namespaces it manages; see %s", logPath)
	return policy
}

// nginxDeployment is the demo's nginx: one replica with an HTTP readiness probe on port 80.
func nginxDeployment(ns string) *appsv1.Deployment {
	labels := map[string]string{"app": "nginx"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nginx"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "nginx", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt(80)}}},
			}}}},
		},
	}
}
