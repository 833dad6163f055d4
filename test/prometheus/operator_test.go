package prometheus

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// repoRoot is the operator's repository, two folders up from this module.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// servedFamily is a metric family as the operator's /metrics endpoint serves it.
type servedFamily struct {
	Type dto.MetricType
	// Labels holds every value of every label across the family's series.
	Labels map[string]map[string]bool
}

var (
	servedOnce sync.Once
	served     map[string]servedFamily
	servedErr  error
	stopServed = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopServed()
	os.Exit(code)
}

// servedMetrics is what the operator serves once it has reconciled a policy: it starts etcd and
// kube-apiserver (KUBEBUILDER_ASSETS, else ../../bin, as `make test` does) with the operator's
// CRD, runs the operator binary (MANAGER, else built from ../.. into a temporary folder) with
// plain-HTTP metrics on loopback, creates a policy, and scrapes /metrics once every family the
// operator creates per policy and per controller is there. Families are keyed by name.
func servedMetrics(t *testing.T) map[string]servedFamily {
	t.Helper()
	servedOnce.Do(func() { served, servedErr = startAndScrape() })
	if servedErr != nil {
		t.Fatal(servedErr)
	}
	return served
}

func startAndScrape() (map[string]servedFamily, error) {
	dir, err := os.MkdirTemp("", "prometheus-test-")
	if err != nil {
		return nil, err
	}
	var stops []func()
	stopServed = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		_ = os.RemoveAll(dir)
	}

	manager, err := operatorBinary(dir)
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(repoRoot(), "bin")
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // a failed start may have left etcd or kube-apiserver running
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s (make envtest-bins): %w", assets, err)
	}
	stops = append(stops, func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "probe-redirect-operator", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "manager.log")
	stop, err := runOperator(manager, logPath, kubeconfigPath,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--metrics-secure=false", "--health-probe-bind-address=0")
	if err != nil {
		return nil, err
	}
	stops = append(stops, stop)

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "metrics"}}); err != nil {
		return nil, err
	}
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "mesh.proberedirect.io/v1alpha1",
		"kind":       "ProbeRedirectPolicy",
		"metadata":   map[string]any{"namespace": "metrics", "name": "metrics"},
		"spec":       map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "metrics"}}},
	}}
	if err := c.Create(ctx, policy); err != nil {
		return nil, err
	}

	// A family the operator creates per policy, one created per controller, and the latency
	// histogram observed at the end of a reconcile.
	wanted := []string{"proberedirect_policy_condition", "workqueue_depth", "controller_runtime_reconcile_time_seconds"}
	var families map[string]servedFamily
	lastErr := fmt.Errorf("not scraped")
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		families, lastErr = scrape(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if lastErr != nil {
			return false, nil // not serving yet: try again
		}
		for _, name := range wanted {
			if _, ok := families[name]; !ok {
				lastErr = fmt.Errorf("no %s yet", name)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("the operator did not serve %v: %w (%v); its log:\n%s", wanted, err, lastErr, log)
	}
	return families, nil
}

// operatorBinary is $MANAGER, or the operator built from the repository into dir.
func operatorBinary(dir string) (string, error) {
	if m := os.Getenv("MANAGER"); m != "" {
		return m, nil
	}
	out := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", out, ".")
	build.Dir = repoRoot()
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the operator: %w\n%s", err, msg)
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runOperator starts the operator in its own process group, dying with the test binary; stop
// sends SIGTERM and waits for it.
func runOperator(manager, logPath, kubeconfig string, args ...string) (stop func(), err error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(manager, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
	}, nil
}

// scrape reads the text exposition at url with Prometheus's own parser.
func scrape(ctx context.Context, url string) (map[string]servedFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	families := map[string]servedFamily{}
	for name, f := range parsed {
		family := servedFamily{Type: f.GetType(), Labels: map[string]map[string]bool{}}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if family.Labels[l.GetName()] == nil {
					family.Labels[l.GetName()] = map[string]bool{}
				}
				family.Labels[l.GetName()][l.GetValue()] = true
			}
		}
		families[name] = family
	}
	return families, nil
}
