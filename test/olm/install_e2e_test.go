//go:build e2e

package olm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/installcheck"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

func init() { utilruntime.Must(apiextensionsv1.AddToScheme(testenv.Scheme)) }

// TestBundlePermissionsAreEnoughForAFullReconcile installs the bundle the way OLM does, in two
// install modes: AllNamespaces (the CSV's permissions granted cluster-wide) and MultiNamespace
// (the CSV's permissions as Roles in the operator's namespace and in each target namespace,
// WATCH_NAMESPACES from olm.targetNamespaces), each time with the bundle's manifests, the CSV's
// service account and clusterPermissions, then runs the operator binary with that service
// account's token and the CSV deployment's arguments. A reconcile that needs a permission the
// bundle lacks fails the test, as does any "forbidden" in the operator's log.
func TestBundlePermissionsAreEnoughForAFullReconcile(t *testing.T) {
	t.Run("AllNamespaces", func(t *testing.T) { installAndReconcile(t, nil) })
	t.Run("MultiNamespace", func(t *testing.T) { installAndReconcile(t, []string{"shop", "billing"}) })
}

// installAndReconcile installs the bundle for targets (nil: every namespace) and runs a full
// reconcile in namespace shop.
func installAndReconcile(t *testing.T, targets []string) {
	g := NewWithT(t)
	ctx := context.Background()
	manager := installcheck.Manager(t)
	cluster, admin, clientset := installcheck.Cluster(t, "olm")

	// What OLM creates from the bundle: the operator namespace, the other manifests (CRD, Service,
	// ClusterRoles), the service account, and the CSV's permissions bound to it.
	const operatorNamespace = "operators"
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())
	for _, ns := range targets {
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
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
	clusterRole := func(name string, rules []rbacv1.PolicyRule) {
		g.Expect(admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules})).To(Succeed())
		g.Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})).To(Succeed())
	}
	role := func(namespace, name string, rules []rbacv1.PolicyRule) {
		g.Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Rules: rules})).To(Succeed())
		g.Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})).To(Succeed())
	}
	for i, p := range csvTyped.Spec.Install.Spec.ClusterPermissions {
		g.Expect(p.ServiceAccountName).To(Equal(serviceAccount))
		clusterRole(fmt.Sprintf("csv-cluster-%d", i), p.Rules)
	}
	for i, p := range csvTyped.Spec.Install.Spec.Permissions {
		g.Expect(p.ServiceAccountName).To(Equal(serviceAccount))
		name := fmt.Sprintf("csv-%d", i)
		// OLM's operator group RBAC: the Roles of the operator's namespace, copied to each target
		// namespace, or made ClusterRoles when the targets are every namespace.
		role(operatorNamespace, name, p.Rules)
		if targets == nil {
			clusterRole(name, p.Rules)
		}
		for _, ns := range targets {
			role(ns, name, p.Rules)
		}
	}

	// OLM projects the operator group's target namespaces into the pod's olm.targetNamespaces
	// annotation, which the CSV's Deployment turns into WATCH_NAMESPACES.
	container := deployment.Spec.Template.Spec.Containers[0]
	g.Expect(container.Env).To(ContainElement(And(HaveField("Name", "WATCH_NAMESPACES"),
		HaveField("ValueFrom.FieldRef.FieldPath", "metadata.annotations['olm.targetNamespaces']"))))
	args := container.Args
	g.Expect(args).To(ContainElement("--leader-elect"))
	if targets != nil {
		args = append(slices.Clone(args), "--watch-namespaces="+strings.Join(targets, ","))
	}

	// The operator runs with nothing but the service account's token, and the account can do no
	// more than it needs.
	kubeconfig := installcheck.ServiceAccountKubeconfig(t, cluster, clientset, operatorNamespace, serviceAccount)
	var examples []client.Object
	for _, example := range almExamples(t, csvTyped) {
		examples = append(examples, example)
	}
	installcheck.FullReconcile(t, cluster, admin, clientset, installcheck.Reconcile{
		Manager: manager, Args: args, Kubeconfig: kubeconfig, LeaseNamespace: operatorNamespace,
		Policies: examples, Policy: "nginx", Grants: "the bundle",
	})

	leases, err := clientset.CoordinationV1().Leases(operatorNamespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leases.Items).NotTo(BeEmpty(), "leader election used the Role from the CSV's permissions")
	if targets == nil {
		return
	}
	// A namespace-scoped install has no write access outside its targets.
	saConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	review, err := kubernetes.NewForConfigOrDie(saConfig).AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
		&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "default"}}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(review.Status.Allowed).To(BeFalse(), "patching Deployments outside the target namespaces must be denied")
}
