//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/installcheck"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

var (
	cluster *localcluster.Cluster
	k8s     client.WithWatch
	// binDir holds kubectl and the other tools `make control-plane-bins` built.
	binDir string
)

func init() {
	utilruntime.Must(apiextensionsv1.AddToScheme(testenv.Scheme))
}

// TestMain starts one local control plane and the operator binary for all scenarios.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	root := testenv.RepoRoot()
	binDir = filepath.Join(root, "bin")
	manager := os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(binDir, "manager")
	}
	if _, err := os.Stat(manager); err != nil {
		fmt.Fprintf(os.Stderr, "operator binary %s not found: run `make build` (make test-e2e does it)\n", manager)
		return 1
	}
	name := fmt.Sprintf("e2e-%d", os.Getpid())
	var err error
	cluster, err = localcluster.Start(ctx, localcluster.Options{
		Name:          name,
		Dir:           filepath.Join(root, ".local", "clusters", name),
		Nodes:         3,
		Injector:      &localcluster.InjectorOptions{RewriteAppHTTPProbe: false, Kuma: true, KumaConfig: kumaConfig()},
		KwokStagesDir: os.Getenv("KWOK_STAGES_DIR"),
		Logf:          func(format string, args ...any) { fmt.Printf("localcluster: "+format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local control plane:", err)
		return 1
	}
	keepDir := true
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local control plane:", err)
		}
		if alive := cluster.Alive(); len(alive) > 0 {
			fmt.Fprintln(os.Stderr, "processes still running after stop:", alive)
		}
		if !keepDir {
			_ = os.RemoveAll(cluster.Dir)
		}
	}()
	k8s, err = client.NewWithWatch(cluster.RESTConfig, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := installCRD(ctx, filepath.Join(root, "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, "installing the CRD:", err)
		return 1
	}

	// The operator runs as the installer's ServiceAccount with the installer's RBAC only.
	kubeconfig, err := installerIdentity(ctx, root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the installer's ServiceAccount and RBAC:", err)
		return 1
	}
	stopOperator, err := startOperator(manager, kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the operator:", err)
		return 1
	}
	code := m.Run()
	stopOperator()
	if log, err := os.ReadFile(filepath.Join(cluster.Dir, "logs", "operator.log")); err == nil && bytes.Contains(bytes.ToLower(log), []byte("forbidden")) {
		fmt.Fprintln(os.Stderr, "the operator hit a permission the installer's RBAC does not grant; see logs/operator.log")
		code = 1
	}
	if code != 0 {
		fmt.Printf("cluster state and logs kept for inspection in %s (operator log: logs/operator.log)\n", cluster.Dir)
	} else {
		keepDir = false
	}
	return code
}

// kumaConfig is the Kuma control plane of the Kuma scenarios: the application probe proxy off by
// default (applicationProbeProxyPort: 0) and virtual probes off, as on a control plane upgraded
// from before 2.9 with virtualProbesEnabled: false (Kuma's golden case 19), so that the kubelet's
// probes reach the app ports unless a workload asks for the proxy.
func kumaConfig() *meshdouble.KumaOptions {
	o := meshdouble.DefaultKumaOptions()
	o.ProbeProxyPort = 0
	o.VirtualProbesEnabled = false
	return &o
}

func installCRD(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return localcluster.InstallCRDs(ctx, cluster.RESTConfig, path)
}

// installerIdentity creates the RBAC of dist/install.yaml and returns a kubeconfig that
// authenticates as its ServiceAccount.
func installerIdentity(ctx context.Context, root string) (string, error) {
	namespace, serviceAccount, err := installcheck.InstallerRBAC(ctx, k8s, filepath.Join(root, "dist", "install.yaml"))
	if err != nil {
		return "", err
	}
	clientset, err := kubernetes.NewForConfig(cluster.RESTConfig)
	if err != nil {
		return "", err
	}
	return installcheck.TokenKubeconfig(ctx, cluster, clientset, namespace, serviceAccount, "operator")
}

// startOperator runs the manager binary against the cluster, authenticated by kubeconfig.
func startOperator(manager, kubeconfig string) (func(), error) {
	return localcluster.RunOperator(manager, filepath.Join(cluster.Dir, "logs", "operator.log"),
		"--kubeconfig="+kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--leader-elect=false",
		"--event-coalesce=1s", "--concurrency=4")
}
