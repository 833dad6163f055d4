package argocd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/diff"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/argoproj/gitops-engine/pkg/utils/tracing"
	"github.com/go-logr/logr"
	log "github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/util/openapi"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cluster is a real etcd + kube-apiserver (the repository's bin/, built by `make envtest-bins`) with the
// ProbeRedirectPolicy CRD installed, plus the Argo CD machinery that talks to it.
type cluster struct {
	config    *rest.Config
	clientset kubernetes.Interface
	dynamic   dynamic.Interface
	openAPI   openapi.Resources
	gvkParser *managedfields.GvkParser
	// argoOps applies manifests the way Argo CD's sync does (kubectl apply library inside gitops-engine).
	argoOps kube.ResourceOperations
	// dryRunApplier is Argo CD's server-side diff applier (dry-run server-side apply as argocd-controller).
	dryRunApplier diff.KubeApplier
}

var (
	clusterOnce sync.Once
	clusterEnv  *envtest.Environment
	clusterVal  *cluster
	clusterErr  error
	cleanups    []func()
)

// assetsDir is KUBEBUILDER_ASSETS (which envtest prefers anyway) or the repository's bin/.
func assetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make envtest-bins` in the repository root first (these tests need a real kube-apiserver and etcd)", name, dir)
		}
	}
	return dir, nil
}

// startCluster starts the API server once for the whole test binary; a test that needs it fails (never skips)
// when the binaries are missing.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	clusterOnce.Do(func() { clusterVal, clusterErr = newCluster() })
	if clusterErr != nil {
		t.Fatalf("starting kube-apiserver: %v", clusterErr)
	}
	return clusterVal
}

func newCluster() (*cluster, error) {
	dir, err := assetsDir()
	if err != nil {
		return nil, err
	}
	clusterEnv = &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := clusterEnv.Start()
	if err != nil {
		_ = clusterEnv.Stop() // a failed start may have left etcd or kube-apiserver running
		return nil, err
	}
	c := &cluster{config: cfg}
	if c.clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	// Argo CD's own loaders: the OpenAPI resources kubectl apply needs and the GVK parser its diffs use.
	kubectl := &kube.KubectlCmd{Log: logr.Discard(), Tracer: tracing.NopTracer{}}
	if c.openAPI, c.gvkParser, err = kubectl.LoadOpenAPISchema(cfg); err != nil {
		return nil, err
	}
	ops, cleanup, err := kubectl.ManageResources(cfg, c.openAPI)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, cleanup)
	c.argoOps = ops
	applier, cleanup, err := kube.ManageServerSideDiffDryRuns(cfg, c.openAPI, tracing.NopTracer{}, logr.Discard(), nil)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, cleanup)
	c.dryRunApplier = applier
	return c, nil
}

func TestMain(m *testing.M) {
	log.SetLevel(log.WarnLevel) // Argo CD's settings manager logs informer chatter at info
	ctx, cancel := context.WithCancel(context.Background())
	if err := loadDefaults(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cancel()
	for _, f := range cleanups {
		f()
	}
	if clusterEnv != nil {
		if err := clusterEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping kube-apiserver:", err)
		}
	}
	os.Exit(code)
}
