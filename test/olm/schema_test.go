package olm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// csvCRD is OLM's ClusterServiceVersion CRD (operator-framework/api crds/), read in place from
// the shared fixtures next to the repository; see ../shared/fixtures/README.md.
const csvCRD = "../../../shared/fixtures/olm/operators.coreos.com_clusterserviceversions.yaml"

// TestBundleAgainstRealSchemas creates the bundle's CSV against OLM's real CSV schema, every
// alm-example against our CRD, and what OLM would create from the CSV (the Deployment and the
// RBAC) and from the other manifests, all with strict field validation, on a real kube-apiserver.
func TestBundleAgainstRealSchemas(t *testing.T) {
	g := NewWithT(t)
	_, err := os.Stat(csvCRD)
	g.Expect(err).NotTo(HaveOccurred(), "OLM's CSV CRD fixture must be at %s", csvCRD)

	env, err := testenv.New()
	g.Expect(err).NotTo(HaveOccurred())
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, csvCRD)
	cfg, err := env.Start()
	t.Cleanup(func() { _ = env.Stop() }) // also after a failed start, which may leave processes behind
	g.Expect(err).NotTo(HaveOccurred())
	plain, err := client.New(cfg, client.Options{Scheme: testenv.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	// Strict: an unknown or duplicated field is an error, not silently pruned.
	c := client.WithFieldValidation(plain, metav1.FieldValidationStrict)
	ctx := context.Background()

	const ns = "operators"
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

	typed, u := readCSV(t)
	t.Run("CSV", func(t *testing.T) {
		g := NewWithT(t)
		obj := u.DeepCopy()
		obj.SetNamespace(ns)
		g.Expect(c.Create(ctx, obj)).To(Succeed())
		stored := &unstructured.Unstructured{}
		stored.SetGroupVersionKind(obj.GroupVersionKind())
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
		g.Expect(normalize(t, stored.Object["spec"])).To(Equal(normalize(t, u.Object["spec"])),
			"the API server kept the CSV's spec unchanged")
		g.Expect(stored.GetAnnotations()).To(Equal(u.GetAnnotations()))
	})

	t.Run("alm-examples", func(t *testing.T) {
		g := NewWithT(t)
		examples := almExamples(t, typed)
		g.Expect(examples).NotTo(BeEmpty())
		for _, ex := range examples {
			ex = ex.DeepCopy()
			ex.SetNamespace(ns)
			g.Expect(c.Create(ctx, ex)).To(Succeed(), "alm-example %s %s", ex.GetKind(), ex.GetName())
		}
	})

	t.Run("install strategy", func(t *testing.T) {
		g := NewWithT(t)
		for _, d := range typed.Spec.Install.Spec.Deployments {
			dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns, Labels: d.Label}, Spec: d.Spec}
			g.Expect(c.Create(ctx, dep)).To(Succeed(), "Deployment %s", d.Name)
		}
		for i, p := range typed.Spec.Install.Spec.ClusterPermissions {
			role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("csv-cluster-permissions-%d", i)}, Rules: p.Rules}
			g.Expect(c.Create(ctx, role)).To(Succeed())
		}
		for i, p := range typed.Spec.Install.Spec.Permissions {
			role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("csv-permissions-%d", i), Namespace: ns}, Rules: p.Rules}
			g.Expect(c.Create(ctx, role)).To(Succeed())
		}
	})

	t.Run("other manifests", func(t *testing.T) {
		g := NewWithT(t)
		for name, obj := range readManifests(t) {
			if kind := obj.GetKind(); kind == "ClusterServiceVersion" || kind == "CustomResourceDefinition" {
				continue // the CSV is created above; envtest installed the CRD from config/crd
			}
			obj = obj.DeepCopy()
			namespaced, err := c.IsObjectNamespaced(obj)
			g.Expect(err).NotTo(HaveOccurred(), name)
			if namespaced {
				obj.SetNamespace(ns) // OLM creates namespaced manifests in the install namespace
			}
			g.Expect(c.Create(ctx, obj)).To(Succeed(), name)
		}
	})

	t.Run("CRD matches config/crd", func(t *testing.T) {
		g := NewWithT(t)
		for name, obj := range readManifests(t) {
			if obj.GetKind() != "CustomResourceDefinition" {
				continue
			}
			source := decodeAll(t, mustRead(t, filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", name)))
			g.Expect(source).To(HaveLen(1))
			g.Expect(normalize(t, obj.Object)).To(Equal(normalize(t, source[0].Object)), name)
		}
	})
}

// normalize turns a value into plain JSON types so that int64 and float64 compare equal.
func normalize(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var out any
	NewWithT(t).Expect(json.Unmarshal(data, &out)).To(Succeed())
	return out
}
