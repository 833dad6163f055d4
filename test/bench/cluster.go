//go:build bench

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/installcheck"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
)

// benchStages writes, into dir, the repository's kwok pod stages (hack/kwok/pod-stages.yaml) with
// one change: the stage that makes a pod Ready (meshdouble-pod-ready) waits delay (plus up to
// jitter) first, as a kubelet waits for the first successful readiness probe. The file the e2e and
// chaos tests use is not touched.
func benchStages(root, dir string, delay, jitter time.Duration) (string, error) {
	src := filepath.Join(root, "hack", "kwok", "pod-stages.yaml")
	data, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	docs := strings.Split(string(data), "\n---\n")
	found := false
	for i, doc := range docs {
		var stage map[string]any
		if err := yaml.Unmarshal([]byte(doc), &stage); err != nil || stage == nil {
			continue
		}
		meta, _ := stage["metadata"].(map[string]any)
		if meta == nil || meta["name"] != "meshdouble-pod-ready" {
			continue
		}
		spec, _ := stage["spec"].(map[string]any)
		if spec == nil {
			return "", fmt.Errorf("%s: meshdouble-pod-ready has no spec", src)
		}
		spec["delay"] = map[string]any{
			"durationMilliseconds":       delay.Milliseconds(),
			"jitterDurationMilliseconds": (delay + jitter).Milliseconds(),
		}
		out, err := yaml.Marshal(stage)
		if err != nil {
			return "", err
		}
		docs[i] = fmt.Sprintf("# meshdouble-pod-ready with a %s readiness delay (test/bench)\n%s", delay, out)
		found = true
	}
	if !found {
		return "", fmt.Errorf("%s: no meshdouble-pod-ready stage", src)
	}
	path := filepath.Join(dir, "bench-pod-stages.yaml")
	return path, os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")), 0o644)
}

// auditPolicy records, at the Metadata level and once per request (ResponseComplete), every
// request made by a ServiceAccount. On the local control plane the only client that
// authenticates as a ServiceAccount is the operator (the controller manager, the scheduler, kwok,
// the injector and this harness use the admin token); the analysis also filters by the operator's
// user name.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
`

// startCluster starts the local control plane with the bench stages, the audit log, enough
// nodes and the chosen injector, installs the CRD and the installer's RBAC, and returns the
// operator's user name and kubeconfig maker.
func startCluster(ctx context.Context, root, work string, p params, logf func(string, ...any)) (*localcluster.Cluster, client.Client, *identity, error) {
	stages, err := benchStages(root, work, p.ReadyDelay, p.ReadyJitter)
	if err != nil {
		return nil, nil, nil, err
	}
	policyFile := filepath.Join(work, "audit-policy.yaml")
	if err := os.WriteFile(policyFile, []byte(auditPolicy), 0o644); err != nil {
		return nil, nil, nil, err
	}
	auditLog := filepath.Join(work, "audit.log")
	_ = os.Remove(auditLog)
	var kcmArgs []string
	if p.ControllerManagerQPS > 0 {
		kcmArgs = []string{fmt.Sprintf("--kube-api-qps=%d", p.ControllerManagerQPS), fmt.Sprintf("--kube-api-burst=%d", 2*p.ControllerManagerQPS)}
	}
	name := "bench-" + strconv.Itoa(os.Getpid())
	c, err := localcluster.Start(ctx, localcluster.Options{
		Name:          name,
		Dir:           filepath.Join(root, ".local", "clusters", name),
		Nodes:         p.nodes(),
		Injector:      &localcluster.InjectorOptions{Double: p.Mesh == "double", RewriteAppHTTPProbe: false},
		KwokStagesDir: os.Getenv("KWOK_STAGES_DIR"),
		PodStagesFile: stages,
		StartTimeout:  p.Timeout,
		APIServerArgs: []string{
			"--audit-policy-file=" + policyFile,
			"--audit-log-path=" + auditLog,
			"--audit-log-format=json",
			"--audit-log-mode=blocking",
		},
		ControllerManagerArgs: kcmArgs,
		Logf:                  logf,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := *c.RESTConfig
	// No client-side rate limit, as controller-runtime's default for the operator (it relies on
	// the API server's priority and fairness).
	cfg.QPS, cfg.Burst = -1, 0
	cl, err := client.NewWithWatch(&cfg, client.Options{Scheme: scheme})
	if err == nil {
		err = installCRD(ctx, c, filepath.Join(root, "config", "crd", "bases", "mesh.proberedirect.io_proberedirectpolicies.yaml"))
	}
	var id *identity
	if err == nil {
		id, err = installerIdentity(ctx, c, cl, filepath.Join(root, "dist", "install.yaml"), auditLog)
	}
	if err != nil {
		_ = c.Stop()
		return nil, nil, nil, err
	}
	return c, cl, id, nil
}

// identity is who the operator runs as: the installer's ServiceAccount, with its RBAC only.
type identity struct {
	namespace, serviceAccount string
	// user is the API server's user name of the ServiceAccount.
	user     string
	auditLog string
	cluster  *localcluster.Cluster
	cs       kubernetes.Interface
}

func installerIdentity(ctx context.Context, c *localcluster.Cluster, admin client.Client, installYAML, auditLog string) (*identity, error) {
	if _, err := os.Stat(installYAML); err != nil {
		return nil, fmt.Errorf("%w: run `make build-installer` (make bench does it)", err)
	}
	ns, sa, err := installcheck.InstallerRBAC(ctx, admin, installYAML)
	if err != nil {
		return nil, fmt.Errorf("creating the installer's RBAC: %w", err)
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return nil, err
	}
	return &identity{namespace: ns, serviceAccount: sa, user: "system:serviceaccount:" + ns + ":" + sa,
		auditLog: auditLog, cluster: c, cs: cs}, nil
}

// kubeconfig writes <cluster dir>/operator.kubeconfig with a fresh token of the ServiceAccount,
// valid for 12 hours (a full-size run lasts longer than installcheck's one-hour tokens).
func (id *identity) kubeconfig(ctx context.Context) (string, error) {
	token, err := id.cs.CoreV1().ServiceAccounts(id.namespace).CreateToken(ctx, id.serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(12 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s: %w", id.user, err)
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: id.cluster.APIServerURL, CertificateAuthorityData: id.cluster.CABundle}
	config.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	config.Contexts["operator"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "operator"}
	config.CurrentContext = "operator"
	path := filepath.Join(id.cluster.Dir, "operator.kubeconfig")
	return path, clientcmd.WriteToFile(*config, path)
}

// installCRD installs the operator's CRD and waits, at most a minute, until it is Established.
func installCRD(ctx context.Context, c *localcluster.Cluster, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return localcluster.InstallCRDs(ctx, c.RESTConfig, path)
}

// operator is one operator process with its metrics endpoint.
type operator struct {
	*localcluster.Operator
	metricsURL string
	// pprofURL is the operator's /debug/pprof endpoint (--pprof-bind-address).
	pprofURL string
	log      string
}

// startOperator runs bin/manager as the installer's ServiceAccount with the installed defaults
// (concurrency 2, event coalescing 2 s) and leader election off, serving plain-HTTP metrics on a
// free loopback port, and waits until its workers run.
func startOperator(ctx context.Context, manager string, id *identity, logPath string) (*operator, error) {
	kubeconfig, err := id.kubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	addr, pprofAddr := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", pprofPort)
	op, err := localcluster.StartOperator(manager, logPath, localcluster.WorkersStarted,
		"--kubeconfig="+kubeconfig, "--leader-elect=false",
		"--metrics-bind-address="+addr, "--metrics-secure=false", "--health-probe-bind-address=0", "--pprof-bind-address="+pprofAddr)
	if err != nil {
		return nil, err
	}
	return &operator{Operator: op, metricsURL: "http://" + addr + "/metrics", pprofURL: "http://" + pprofAddr + "/debug/pprof", log: logPath}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
