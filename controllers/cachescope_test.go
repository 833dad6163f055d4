package controllers_test

import (
	"testing"

	. "github.com/onsi/gomega"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/controllers"
)

// namespacesOf returns the namespaces the cache options give one kind, by its Go type (and, for
// unstructured objects, its kind), and whether the kind has an entry at all.
func namespacesOf(o cache.Options, match func(any) bool) ([]string, bool) {
	for obj, by := range o.ByObject {
		if match(obj) {
			var out []string
			for ns := range by.Namespaces {
				out = append(out, ns)
			}
			return out, true
		}
	}
	return nil, false
}

func isPeerAuthentication(obj any) bool { _, ok := obj.(*securityv1.PeerAuthentication); return ok }

func isMeshTLS(obj any) bool {
	u, ok := obj.(*unstructured.Unstructured)
	return ok && u.GetKind() == "MeshTLS"
}

// TestCacheScope keeps a namespace-scoped install from naming a mesh kind the API server does not
// serve (the manager could not start: the cache needs its REST mapping), and reads the mesh-wide
// policies outside the watched namespaces when the kind is served.
func TestCacheScope(t *testing.T) {
	g := NewWithT(t)
	scope := controllers.CacheScope{WatchNamespaces: []string{"shop"}, RootNamespace: "istio-system", KumaSystemNamespace: "kuma-system"}

	o := controllers.CacheOptions(scope)
	_, pa := namespacesOf(o, isPeerAuthentication)
	_, meshTLS := namespacesOf(o, isMeshTLS)
	g.Expect(pa).To(BeFalse(), "PeerAuthentication is not served")
	g.Expect(meshTLS).To(BeFalse(), "MeshTLS is not served")
	g.Expect(o.DefaultNamespaces).To(HaveKey("shop"))
	deploymentNamespaces, _ := namespacesOf(o, isDeployment)
	g.Expect(deploymentNamespaces).To(ConsistOf("shop", "istio-system"), "istiod's Deployments are read in the root namespace")
	g.Expect(transformOf(o, isDeployment)).NotTo(BeNil(), "a namespace-scoped install slims its Deployments too")

	scope.PeerAuthenticationServed, scope.KumaMeshTLSServed = true, true
	o = controllers.CacheOptions(scope)
	paNamespaces, _ := namespacesOf(o, isPeerAuthentication)
	meshTLSNamespaces, _ := namespacesOf(o, isMeshTLS)
	g.Expect(paNamespaces).To(ConsistOf("shop", "istio-system"))
	g.Expect(meshTLSNamespaces).To(ConsistOf("shop", "kuma-system"))

	o = controllers.CacheOptions(controllers.CacheScope{RootNamespace: "istio-system", PeerAuthenticationServed: true, KumaMeshTLSServed: true})
	g.Expect(o.DefaultNamespaces).To(BeEmpty(), "a cluster-wide install caches every namespace")
	_, pa = namespacesOf(o, isPeerAuthentication)
	g.Expect(pa).To(BeFalse())
	for name, is := range map[string]func(any) bool{"Deployment": isDeployment, "StatefulSet": isStatefulSet, "DaemonSet": isDaemonSet, "Pod": isPod} {
		g.Expect(transformOf(o, is)).NotTo(BeNil(), "%ss are slimmed in the cache", name)
	}
	g.Expect(o.DefaultTransform).NotTo(BeNil(), "every other kind is cached without managedFields")
	_, policy := namespacesOf(o, func(obj any) bool { _, ok := obj.(*v1alpha1.ProbeRedirectPolicy); return ok })
	g.Expect(policy).To(BeFalse(), "no entry for the policy's kind: the manager would need its CRD before it starts")
}

func isDeployment(obj any) bool  { _, ok := obj.(*appsv1.Deployment); return ok }
func isStatefulSet(obj any) bool { _, ok := obj.(*appsv1.StatefulSet); return ok }
func isDaemonSet(obj any) bool   { _, ok := obj.(*appsv1.DaemonSet); return ok }
func isPod(obj any) bool         { _, ok := obj.(*corev1.Pod); return ok }

// transformOf returns the cache transform the options give one kind; there must be exactly one
// entry for it.
func transformOf(o cache.Options, match func(any) bool) toolscache.TransformFunc {
	var out toolscache.TransformFunc
	n := 0
	for obj, by := range o.ByObject {
		if match(obj) {
			out, n = by.Transform, n+1
		}
	}
	if n != 1 {
		return nil
	}
	return out
}
