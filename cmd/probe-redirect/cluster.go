package main

import (
	"context"
	"fmt"
	"strings"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
)

// readCluster reads the context the analysis judges by from the cluster of a kubeconfig: every
// Namespace, PeerAuthentication, Kuma Mesh and MeshTLS, and ProbeRedirectPolicy. It only lists. A
// cluster without Istio's, Kuma's or the operator's CRD gives none of that kind. A Kuma Mesh or
// MeshTLS that cannot be read is left out, as the operator leaves it out, and named in Ignored.
func readCluster(ctx context.Context, kubeconfig, kubeContext string) (analyze.Objects, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return analyze.Objects{}, fmt.Errorf("--cluster: %w", err)
	}
	c, err := client.New(config, client.Options{Scheme: analyze.Scheme})
	if err != nil {
		return analyze.Objects{}, fmt.Errorf("--cluster: %w", err)
	}
	return readClusterWith(ctx, c)
}

// readClusterWith is readCluster through c.
func readClusterWith(ctx context.Context, c client.Reader) (analyze.Objects, error) {
	var objs analyze.Objects
	namespaces := &corev1.NamespaceList{}
	if err := c.List(ctx, namespaces); err != nil {
		return objs, fmt.Errorf("--cluster: listing Namespaces: %w", err)
	}
	for i := range namespaces.Items {
		objs.Namespaces = append(objs.Namespaces, &namespaces.Items[i])
	}
	peerAuthentications := &securityv1.PeerAuthenticationList{}
	if err := c.List(ctx, peerAuthentications); ignoreNotServed(err) != nil {
		return objs, fmt.Errorf("--cluster: listing PeerAuthentications: %w", err)
	}
	objs.PeerAuthentications = peerAuthentications.Items
	policies := &v1alpha1.ProbeRedirectPolicyList{}
	if err := c.List(ctx, policies); ignoreNotServed(err) != nil {
		return objs, fmt.Errorf("--cluster: listing ProbeRedirectPolicies: %w", err)
	}
	for i := range policies.Items {
		objs.Policies = append(objs.Policies, &policies.Items[i])
	}
	meshes, err := listKuma(ctx, c, "MeshList")
	if err != nil {
		return objs, err
	}
	for i := range meshes {
		m, err := kumamesh.MeshFromUnstructured(&meshes[i])
		if err != nil {
			objs.Ignored = append(objs.Ignored, analyze.KumaIgnored("Mesh", meshes[i].GetName(), analyze.Source{}, err))
			continue
		}
		objs.KumaMeshes = append(objs.KumaMeshes, m)
	}
	meshTLSes, err := listKuma(ctx, c, "MeshTLSList")
	if err != nil {
		return objs, err
	}
	for i := range meshTLSes {
		p, err := kumamesh.MeshTLSFromUnstructured(&meshTLSes[i])
		if err != nil {
			objs.Ignored = append(objs.Ignored, analyze.KumaIgnored("MeshTLS", meshTLSes[i].GetNamespace()+"/"+meshTLSes[i].GetName(), analyze.Source{}, err))
			continue
		}
		objs.KumaMeshTLSes = append(objs.KumaMeshTLSes, p)
	}
	return objs, nil
}

// listKuma lists a Kuma kind (MeshList, MeshTLSList) in every namespace; nothing when the cluster
// does not serve kuma.io/v1alpha1.
func listKuma(ctx context.Context, c client.Reader, listKind string) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(analyze.KumaGroupVersion.WithKind(listKind))
	if err := c.List(ctx, list); ignoreNotServed(err) != nil {
		return nil, fmt.Errorf("--cluster: listing Kuma %ses: %w", strings.TrimSuffix(listKind, "List"), err)
	}
	return list.Items, nil
}

func ignoreNotServed(err error) error {
	if meta.IsNoMatchError(err) {
		return nil
	}
	return err
}
