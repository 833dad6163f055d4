//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

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
	c, err := localcluster.Start(ctx, localcluster.Options{
		Name:          name,
		Dir:           filepath.Join(root, ".local", "clusters", name),
		Nodes:         3,
		Injector:      &localcluster.InjectorOptions{RewriteAppHTTPProbe: false, Deferred: meshLater},
		KwokStagesDir: os.Getenv("KWOK_STAGES_DIR"),
		Logf:          func(format string, args ...any) { fmt.Printf("localcluster: "+format+"\n", args...) },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the local control plane: %w", err)
	}
	cl, err := client.NewWithWatch(c.RESTConfig, client.Options{Scheme: testenv.Scheme})
	if err == nil {
		err = installCRD(ctx, cl, filepath.Join(root, "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml"))
	}
	if err != nil {
		_ = c.Stop()
		return nil, nil, err
	}
	return c, cl, nil
}

func installCRD(ctx context.Context, cl client.Client, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		return err
	}
	if err := cl.Create(ctx, crd); err != nil {
		return fmt.Errorf("installing the CRD: %w", err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return false, nil
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// operatorArgs are the flags every test's operator runs with, against c.
func operatorArgs(c *localcluster.Cluster, extra ...string) []string {
	return append([]string{
		"--kubeconfig=" + c.Kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--event-coalesce=1s", "--concurrency=4",
	}, extra...)
}

// startOperator runs one operator process against c with leader election off, logging to
// logs/<name>.log; it is stopped at the end of the test.
func startOperator(t *testing.T, c *localcluster.Cluster, name string, extra ...string) *localcluster.Operator {
	t.Helper()
	op, err := localcluster.StartOperator(manager, filepath.Join(c.Dir, "logs", name+".log"), localcluster.WorkersStarted,
		operatorArgs(c, append([]string{"--leader-elect=false"}, extra...)...)...)
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
func startOperatorQuiet(c *localcluster.Cluster, name string, extra ...string) (*localcluster.Operator, error) {
	return localcluster.StartOperator(manager, filepath.Join(c.Dir, "logs", name+".log"), localcluster.WorkersStarted,
		operatorArgs(c, append([]string{"--leader-elect=false"}, extra...)...)...)
}
