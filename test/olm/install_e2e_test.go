//go:build e2e

package olm

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/installcheck"
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
	manager := installcheck.Manager(t)
	cluster, admin, clientset := installcheck.Cluster(t, "olm")

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

	// The operator runs with nothing but the service account's token, and the account can do no
	// more than it needs.
	kubeconfig := installcheck.ServiceAccountKubeconfig(t, cluster, clientset, operatorNamespace, serviceAccount)
	args := deployment.Spec.Template.Spec.Containers[0].Args
	g.Expect(args).To(ContainElement("--leader-elect"))
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
}
