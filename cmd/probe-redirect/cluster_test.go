package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// TestCluster reads the context from a real kube-apiserver: the manifests hold only the
// Deployment, the cluster the Namespace and the STRICT PeerAuthentication.
func TestCluster(t *testing.T) {
	g := NewWithT(t)
	env, err := testenv.New()
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	t.Cleanup(func() { _ = env.Stop() }) // also after a failed start, which may leave processes behind
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}})).To(Succeed())
	g.Expect(c.Create(ctx, &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "shop"},
		Spec: securityapi.PeerAuthentication{Mtls: &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}}})).To(Succeed())

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"test": {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"test": {ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}},
		Contexts:       map[string]*clientcmdapi.Context{"test": {Cluster: "test", AuthInfo: "test"}},
		CurrentContext: "test",
	}, kubeconfig)).To(Succeed())
	shop, err := os.ReadFile("../../hack/demo/shop.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	deploymentOnly := filepath.Join(t.TempDir(), "nginx.yaml")
	_, deployment, found := strings.Cut(string(shop), "---\napiVersion: apps/v1\n")
	g.Expect(found).To(BeTrue())
	g.Expect(os.WriteFile(deploymentOnly, []byte("apiVersion: apps/v1\n"+deployment), 0o600)).To(Succeed())

	t.Chdir("../..")
	out, code := run(t, "", "analyze", "-f", deploymentOnly)
	g.Expect(code).To(Equal(exitOK), "without the cluster the namespace is unknown: %s", out)
	g.Expect(out).To(ContainSubstring("NotInMesh"))

	out, code = run(t, "", "analyze", "-f", deploymentOnly, "--cluster", "--kubeconfig", kubeconfig)
	g.Expect(code).To(Equal(exitFindings), out)
	g.Expect(out).To(MatchRegexp(`shop\s+Deployment/nginx\s+nginx\s+Readiness\s+HTTP :80/index.html\s+STRICT\s+WillBreak`))

	// Kuma: the cluster serves kuma.io/v1alpha1; its STRICT Mesh decides a Kuma workload's mode.
	mesh := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"mtls": map[string]any{"enabledBackend": "ca-1",
		"backends": []any{map[string]any{"name": "ca-1", "type": "builtin", "mode": "STRICT"}}}}}}
	mesh.SetAPIVersion("kuma.io/v1alpha1")
	mesh.SetKind("Mesh")
	mesh.SetName("default")
	g.Expect(c.Create(ctx, mesh)).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kshop", Labels: map[string]string{"kuma.io/sidecar-injection": "enabled"}}})).To(Succeed())
	out, code = run(t, strings.Replace("apiVersion: apps/v1\n"+deployment, "namespace: shop", "namespace: kshop", 1), "analyze", "-f", "-", "--cluster", "--kubeconfig", kubeconfig)
	g.Expect(code).To(Equal(exitFindings), out)
	g.Expect(out).To(MatchRegexp(`kshop\s+Deployment/nginx\s+nginx\s+Readiness\s+HTTP :80/index.html\s+Kuma\s+STRICT\s+WillBreak`))

	out, code = run(t, "", "analyze", "-f", deploymentOnly, "--cluster", "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	g.Expect(code).To(Equal(exitError))
	g.Expect(out).To(ContainSubstring("--cluster"))
}
