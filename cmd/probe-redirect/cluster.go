package main

import (
	"context"
	"fmt"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
)

// readCluster reads the context the analysis judges by from the cluster of a kubeconfig: every
// Namespace, PeerAuthentication and ProbeRedirectPolicy. It only lists. A cluster without Istio's
// or the operator's CRD gives none of that kind.
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
	return objs, nil
}

func ignoreNotServed(err error) error {
	if meta.IsNoMatchError(err) {
		return nil
	}
	return err
}
