// Package testenv starts a real kube-apiserver and etcd (built from Go modules by `make
// envtest-bins` into bin/) with this operator's CRD and Istio's CRDs installed, for the API
// validation and controller integration tests.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Scheme knows the core kinds, ProbeRedirectPolicy and PeerAuthentication.
var Scheme = k8sruntime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(v1alpha1.AddToScheme(Scheme))
	utilruntime.Must(securityv1.AddToScheme(Scheme))
}

// RepoRoot is the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// IstioCRDs is the path of the CRDs that ship inside the istio.io/api module.
func IstioCRDs() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating the istio.io/api module: %w", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	return path, nil
}

// AssetsDir is the folder holding etcd and kube-apiserver: KUBEBUILDER_ASSETS, else bin/.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make envtest-bins` (or `make test`) first", name, dir)
		}
	}
	return dir, nil
}

// KumaCRDs is the path of Kuma's Mesh, MeshTLS and MeshHealthCheck CRDs (kumahq/kuma v2.14.3), kept
// with the shared fixtures next to the repository.
func KumaCRDs() string {
	return filepath.Join(RepoRoot(), "..", "shared", "fixtures", "kuma-crds")
}

// New returns an envtest environment with the operator's CRD, Istio's CRDs and Kuma's; call Start
// on it.
func New() (*envtest.Environment, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	istio, err := IstioCRDs()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases"), istio, KumaCRDs()},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme,
	}, nil
}
