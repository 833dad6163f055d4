/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package metricsauth_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/internal/metricsauth"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// TestMetricsEndpointBehindTheAPIServer serves metrics the way the manager does (controller-runtime's
// secure metrics server with FilterProvider) against a real kube-apiserver, reviewing as a
// ServiceAccount that has only config/rbac's metrics-auth-role, as the installed manager does, and
// scrapes it with ServiceAccount tokens the API server issued: one bound to the metrics-reader
// ClusterRole of config/rbac gets the metrics, one without the binding gets 403, a made-up token
// 401, and none at all 401.
func TestMetricsEndpointBehindTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	assets, err := testenv.AssetsDir()
	g.Expect(err).NotTo(HaveOccurred())
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	config, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(config)

	clusterRole := func(file string) *rbacv1.ClusterRole {
		role := &rbacv1.ClusterRole{}
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", file))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(yaml.UnmarshalStrict(data, role)).To(Succeed())
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return role
	}
	role, reviewer := clusterRole("metrics_reader_role.yaml"), clusterRole("metrics_auth_role.yaml")
	token := func(name string, bound bool) string {
		_, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		if bound {
			bindTo := role.Name
			if name == "manager" {
				bindTo = reviewer.Name
			}
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: bindTo},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "default"}}}, metav1.CreateOptions{})
			g.Expect(err).NotTo(HaveOccurred())
		}
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return tr.Status.Token
	}
	prometheus, stranger := token("prometheus", true), token("stranger", false)
	// The manager reviews with its own ServiceAccount's token, not envtest's administrator.
	config = rest.AnonymousClientConfig(config)
	config.BearerToken = token("manager", true)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	g.Expect(l.Close()).To(Succeed())
	httpClient, err := rest.HTTPClientFor(config)
	g.Expect(err).NotTo(HaveOccurred())
	server, err := metricsserver.NewServer(metricsserver.Options{BindAddress: addr, SecureServing: true,
		FilterProvider: metricsauth.FilterProvider, CertDir: t.TempDir()}, config, httpClient)
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = server.Start(ctx) }()

	scraper := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the server's self-signed certificate
	get := func(path, token string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s%s", addr, path), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := scraper.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	g.Eventually(func() (int, error) { return get("/metrics", prometheus) }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))
	g.Expect(get("/metrics", stranger)).To(Equal(http.StatusForbidden))
	g.Expect(get("/metrics", "made-up")).To(Equal(http.StatusUnauthorized))
	g.Expect(get("/metrics", "")).To(Equal(http.StatusUnauthorized))
}
