//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

var (
	// cluster is shared by the tests that need a mesh from the start; they run one after the
	// other, each with its own operator processes.
	cluster *localcluster.Cluster
	k8s     client.Client
	manager string
	root    string
)

func init() { utilruntime.Must(apiextensionsv1.AddToScheme(testenv.Scheme)) }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root = testenv.RepoRoot()
	manager = os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(root, "bin", "manager")
	}
	if _, err := os.Stat(manager); err != nil {
		fmt.Fprintf(os.Stderr, "operator binary %s not found: run `make build` (make test-chaos does it)\n", manager)
		return 1
	}
	var err error
	cluster, k8s, err = startCluster(context.Background(), fmt.Sprintf("chaos-%d", os.Getpid()), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := checkNoForbidden(cluster); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local control plane:", err)
	}
	if code != 0 {
		fmt.Printf("cluster state and logs kept for inspection in %s\n", cluster.Dir)
	} else {
		_ = os.RemoveAll(cluster.Dir)
	}
	return code
}

// startCluster starts a local control plane with Istio's injector (deferred: installed later by
// StartMesh) and the ProbeRedirectPolicy CRD, and a client for it.
func startCluster(ctx context.Context, name string, meshLater bool) (*localcluster.Cluster, client.Client, error) {
	return startClusterWith(ctx, name, &localcluster.InjectorOptions{RewriteAppHTTPProbe: false, Deferred: meshLater})
}

// startClusterWith is startCluster with the given injectors.
func startClusterWith(ctx context.Context, name string, injector *localcluster.InjectorOptions) (*localcluster.Cluster, client.Client, error) {
	c, err := localcluster.Start(ctx, localcluster.Options{
		Name:          name,
		Dir:           filepath.Join(root, ".local", "clusters", name),
		Nodes:         3,
		Injector:      injector,
		KwokStagesDir: os.Getenv("KWOK_STAGES_DIR"),
		Logf:          func(format string, args ...any) { fmt.Printf("localcluster: "+format+"\n", args...) },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the local control plane: %w", err)
	}
	cl, err := client.NewWithWatch(c.RESTConfig, client.Options{Scheme: testenv.Scheme})
	if err == nil {
		err = installCRD(ctx, c, filepath.Join(root, "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml"))
	}
	if err == nil {
		err = installerIdentity(ctx, c, cl)
	}
	if err != nil {
		_ = c.Stop()
		return nil, nil, err
	}
	return c, cl, nil
}

// identities maps each cluster to the kubeconfig of the installer's ServiceAccount and that
// account's namespace: the operator runs with the installer's RBAC only, never as cluster admin.
var identities = map[*localcluster.Cluster]struct{ kubeconfig, namespace string }{}

func installerIdentity(ctx context.Context, c *localcluster.Cluster, admin client.Client) error {
	namespace, serviceAccount, err := installcheck.InstallerRBAC(ctx, admin, filepath.Join(root, "dist", "install.yaml"))
	if err != nil {
		return fmt.Errorf("creating the installer's RBAC: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	kubeconfig, err := installcheck.TokenKubeconfig(ctx, c, clientset, namespace, serviceAccount, "operator")
	if err != nil {
		return err
	}
	identities[c] = struct{ kubeconfig, namespace string }{kubeconfig, namespace}
	return nil
}

func installCRD(ctx context.Context, c *localcluster.Cluster, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return localcluster.InstallCRDs(ctx, c.RESTConfig, path)
}

// operatorArgs are the flags every test's operator runs with, against c, as the installer's
// ServiceAccount.
func operatorArgs(c *localcluster.Cluster, extra ...string) []string {
	return append([]string{
		"--kubeconfig=" + identities[c].kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--event-coalesce=1s", "--concurrency=4",
	}, extra...)
}

// startOperator runs one operator process against c with leader election off, logging to
// logs/<name>.log; it is stopped at the end of the test.
func startOperator(t *testing.T, c *localcluster.Cluster, name string) *localcluster.Operator {
	t.Helper()
	op, err := startOperatorQuiet(c, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if op.Alive() {
			op.Stop()
		}
	})
	return op
}

// localclusterOperator is an operator process.
type localclusterOperator = localcluster.Operator

// startOperatorQuiet is startOperator without the test cleanup, for restarts.
func startOperatorQuiet(c *localcluster.Cluster, name string) (*localcluster.Operator, error) {
	return localcluster.StartOperator(manager, filepath.Join(c.Dir, "logs", name+".log"), localcluster.WorkersStarted,
		operatorArgs(c, "--leader-elect=false")...)
}

// checkNoForbidden fails when an operator log of c shows a request the installer's RBAC denied,
// except in a window when the API server was restarting: a kube-apiserver that has just started
// can deny requests until its RBAC authorizer has loaded the roles (outageWindows).
func checkNoForbidden(c *localcluster.Cluster) error {
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "operator*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if !bytes.Contains(bytes.ToLower(line), []byte("forbidden")) {
				continue
			}
			var entry struct {
				TS time.Time `json:"ts"`
			}
			_ = json.Unmarshal(line, &entry)
			if duringOutage(filepath.Base(l), entry.TS) {
				continue
			}
			return fmt.Errorf("the operator hit a permission the installer's RBAC does not grant; see %s:\n%s", l, line)
		}
	}
	return nil
}

// outageWindows are, per operator log file name, the times the API server was away or starting.
var outageWindows = map[string][2]time.Time{}

func duringOutage(log string, at time.Time) bool {
	w, ok := outageWindows[log]
	return ok && !at.IsZero() && !at.Before(w[0]) && !at.After(w[1])
}
