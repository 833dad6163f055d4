//go:build e2e

// Package e2e installs dist/chart with Helm's install action into a local control plane
// (test/localcluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes)
// and runs the operator with the chart's ServiceAccount and RBAC.
package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/test/installcheck"
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
	manager := installcheck.Manager(t)
	cluster, admin, clientset := installcheck.Cluster(t, "helm")

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

	// The operator, with nothing but the chart's ServiceAccount and the rendered Deployment's
	// arguments.
	kubeconfig := installcheck.ServiceAccountKubeconfig(t, cluster, clientset, namespace, rendered.Spec.Template.Spec.ServiceAccountName)
	args := rendered.Spec.Template.Spec.Containers[0].Args
	g.Expect(args).To(ContainElements("--leader-elect=true", "--metrics-secure=true", "--root-namespace=istio-system"))
	policy := installcheck.FullReconcile(t, cluster, admin, clientset, installcheck.Reconcile{
		Manager: manager, Args: args, Kubeconfig: kubeconfig, LeaseNamespace: namespace,
		Policies: []client.Object{&v1alpha1.ProbeRedirectPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
			Spec:       v1alpha1.ProbeRedirectPolicySpec{Selector: v1alpha1.FromLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}})},
		}},
		Policy: "nginx", Grants: "the chart",
	})

	leases, err := clientset.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leases.Items).To(ContainElement(HaveField("ObjectMeta.Name", "probe-redirect-operator.proberedirect.io")),
		"leader election used the chart's Role")

	// helm uninstall: the release's objects go, the CRD (and so the policies) stay.
	_, err = action.NewUninstall(cfg).Run(helmtest.ReleaseName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(rendered), &appsv1.Deployment{})).To(MatchError(ContainSubstring("not found")))
	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
}
