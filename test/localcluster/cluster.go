package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// Options configure Start. Only Name is needed; everything else has a
// default.
type Options struct {
	// Name of the cluster (kubeconfig context localcluster-<Name>). Default
	// "local".
	Name string
	// Dir is the state folder. Default <repo>/.local/clusters/<Name>.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler and kwok. Default <repo>/bin.
	BinDir string
	// RepoRoot is the repository (for hack/kwok and the istio.io/api module).
	// Default: found from the working directory (see RepoRoot).
	RepoRoot string
	// Nodes is the number of fake kwok nodes. Default 2.
	Nodes int
	// Injector runs Istio's sidecar injector (bin/istio-injector: Istio's own
	// webhook code and chart, built from the test/istio module) or, with
	// Injector.Double, the mesh double; nil means no mesh.
	Injector *InjectorOptions
	// Ports fixes some ports; zero fields are picked free.
	Ports Ports
	// KwokStagesDir is kwok's kustomize/stage folder. Default: from the
	// sigs.k8s.io/kwok module (version from the bin/kwok symlink) via
	// `go mod download`.
	KwokStagesDir string
	// PodStagesFile replaces the stock pod-ready stage. Default
	// <repo>/hack/kwok/pod-stages.yaml.
	PodStagesFile string
	// StartTimeout bounds Start after the processes are launched. Default 3m.
	StartTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL. Default 15s.
	StopGrace time.Duration
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// APIServerArgs are extra kube-apiserver flags, appended after the defaults (the
	// benchmark's audit log, for instance).
	APIServerArgs []string
	// ControllerManagerArgs are extra kube-controller-manager flags, appended after the defaults
	// (a later flag wins, so they can raise its client QPS, for instance).
	ControllerManagerArgs []string
}

// InjectorOptions configure the sidecar injector.
type InjectorOptions struct {
	// Deferred leaves the mesh out at Start: Istio's CRDs and the injector
	// come with Cluster.StartMesh, as when a mesh is installed after the
	// operator.
	Deferred bool
	// Double runs the in-process mesh double (test/meshdouble) instead of
	// Istio's own injector, for a machine that cannot build
	// bin/istio-injector (localcluster up --mesh=double); its verdicts
	// resolve mTLS with the operator's code.
	Double bool
	// RewriteAppHTTPProbe is the chart's mesh-wide
	// values.sidecarInjectorWebhook.rewriteAppHTTPProbe (Istio's default is
	// true; false models an opt-in mesh, where only the pod annotation
	// rewrites).
	RewriteAppHTTPProbe bool
	// RootNamespace is meshConfig.rootNamespace. Default istio-system.
	RootNamespace string
	// IstioCRDs is the CRD file to install. Default
	// kubernetes/customresourcedefinitions.gen.yaml of the istio.io/api module.
	IstioCRDs string

	// Kuma also runs the double of Kuma's sidecar injector
	// (test/meshdouble KumaWebhook behind its verdict layer, in this
	// process) with Kuma's Mesh, MeshTLS and MeshHealthCheck CRDs, next to
	// the Istio injector: a namespace labelled istio-injection=enabled gets
	// Istio's sidecar, one labelled kuma.io/sidecar-injection=enabled gets
	// Kuma's (create a Mesh first: Kuma denies pods of a missing Mesh).
	Kuma bool
	// KumaOnly runs the Kuma double without any Istio injector or Istio
	// CRDs (localcluster up --mesh=kuma).
	KumaOnly bool
	// KumaConfig is the Kuma injector configuration; nil means
	// meshdouble.DefaultKumaOptions() (probe proxy on 9001). Cluster.SetKumaOptions
	// changes it later.
	KumaConfig *meshdouble.KumaOptions
	// KumaCRDsDir holds Kuma's CRD files. Default DefaultKumaCRDsDir.
	KumaCRDsDir string
}

func (o *InjectorOptions) rootNamespace() string {
	if o.RootNamespace == "" {
		return "istio-system"
	}
	return o.RootNamespace
}

// Cluster is a running local control plane.
type Cluster struct {
	// Name, Dir (absolute) and Kubeconfig (absolute path of the admin
	// kubeconfig) of the cluster.
	Name, Dir, Kubeconfig string
	// RESTConfig is an admin client configuration.
	RESTConfig *rest.Config
	// Ports are the ports in use.
	Ports Ports
	// APIServerURL is https://127.0.0.1:<port>.
	APIServerURL string
	// CABundle is the PEM CA of the API server and the injector webhook.
	CABundle []byte
	// InjectorURL is the sidecar injector's webhook URL ("" without Injector).
	InjectorURL string
	// KumaInjectorURL is the Kuma double's webhook URL ("" without Kuma).
	KumaInjectorURL string

	opts  Options
	pki   *pki
	mu    sync.Mutex
	procs map[string]*process
	// auto marks the Ports fields that were picked free (and may be re-picked).
	auto     map[*int]bool
	injector *http.Server
	// kumaServer and kumaInjector are the Kuma double (InjectorOptions.Kuma).
	kumaServer   *http.Server
	kumaInjector *meshdouble.KumaWebhook
	failures     chan error
	// istioCRDs is the Istio CRD file (with Options.Injector).
	istioCRDs string

	stopOnce sync.Once
	stopErr  error
}

// Component names (also the log and pid file names).
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	// InjectorDouble is the in-process webhook (log only, no pid file).
	InjectorDouble = "injector-double"
	// IstioInjector is Istio's own injector, a child process (bin/istio-injector).
	IstioInjector = "istio-injector"
)

// stateFile is written once the cluster is up; see State.
const stateFile = "cluster.json"

// State is the content of <Dir>/cluster.json.
type State struct {
	Name         string         `json:"name"`
	Dir          string         `json:"dir"`
	Kubeconfig   string         `json:"kubeconfig"`
	APIServerURL string         `json:"apiServerURL"`
	Ports        Ports          `json:"ports"`
	PIDs         map[string]int `json:"pids"`
	InjectorURL  string         `json:"injectorURL,omitempty"`
	// KumaInjectorURL is the Kuma double's webhook ("" without Kuma).
	KumaInjectorURL string    `json:"kumaInjectorURL,omitempty"`
	StartedAt       time.Time `json:"startedAt"`
}

// ReadState reads <dir>/cluster.json.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = "local"
	}
	if o.RepoRoot == "" {
		root, err := RepoRoot()
		if err != nil {
			return o, err
		}
		o.RepoRoot = root
	}
	if o.Dir == "" {
		o.Dir = DefaultDir(o.RepoRoot, o.Name)
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.RepoRoot, "bin")
	}
	if o.PodStagesFile == "" {
		o.PodStagesFile = filepath.Join(o.RepoRoot, "hack", "kwok", "pod-stages.yaml")
	}
	if o.Nodes <= 0 {
		o.Nodes = 2
	}
	if o.Nodes > 250 {
		return o, fmt.Errorf("localcluster: at most 250 nodes, not %d", o.Nodes)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Minute
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 15 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	var err error
	for _, p := range []*string{&o.Dir, &o.BinDir, &o.RepoRoot, &o.PodStagesFile} {
		if *p, err = filepath.Abs(*p); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Start starts a cluster and returns once the API server is healthy, every
// component is up and the fake nodes are Ready (and, with Injector, the
// sidecar injector is registered). On failure it stops whatever it started. ctx bounds
// the start only; the cluster runs until Stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	began := time.Now()
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := CheckBinaries(o.BinDir); err != nil {
		return nil, err
	}
	if o.Injector != nil && !o.Injector.Double && !o.Injector.KumaOnly {
		if err := checkBinary(o.BinDir, IstioInjector); err != nil {
			return nil, err
		}
	}
	if err := prepareDir(o.Dir); err != nil {
		return nil, err
	}

	// Resolve every input before launching anything.
	stagesDir := o.KwokStagesDir
	if stagesDir == "" {
		modDir, err := goModDir("sigs.k8s.io/kwok", kwokVersion(o.BinDir))
		if err != nil {
			return nil, err
		}
		stagesDir = filepath.Join(modDir, "kustomize", "stage")
	}
	kwokConfig := filepath.Join(o.Dir, "kwok", "kwok.yaml")
	if err := writeKwokConfig(kwokConfig, stagesDir, o.PodStagesFile); err != nil {
		return nil, err
	}
	var crds string
	if o.Injector.kuma() {
		for _, f := range o.Injector.kumaCRDFiles(o.RepoRoot) {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("localcluster: Kuma CRDs: %w", err)
			}
		}
	}
	if o.Injector != nil && !o.Injector.KumaOnly {
		if crds = o.Injector.IstioCRDs; crds == "" {
			if crds, err = istioCRDsFile(o.RepoRoot); err != nil {
				return nil, err
			}
		}
	}

	c := &Cluster{
		istioCRDs:  crds,
		Name:       o.Name,
		Dir:        o.Dir,
		Kubeconfig: filepath.Join(o.Dir, "kubeconfig"),
		Ports:      o.Ports,
		opts:       o,
		procs:      map[string]*process{},
		auto:       map[*int]bool{},
	}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
	}()
	if c.pki, err = newPKI(filepath.Join(o.Dir, "pki")); err != nil {
		return nil, err
	}
	c.CABundle = c.pki.caPEM
	if err := c.assignPorts(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()

	o.Logf("starting etcd on 127.0.0.1:%d", c.Ports.EtcdClient)
	if err := c.launch(ctx, c.etcd()); err != nil {
		return nil, err
	}
	o.Logf("starting kube-apiserver on 127.0.0.1:%d", c.Ports.APIServer)
	if err := c.launch(ctx, c.apiserver()); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return nil, err
	}

	// The rest in parallel: controller-manager, scheduler, kwok, the injector.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	run(0, func() error { return c.launch(ctx, c.controllerManager()) })
	run(1, func() error { return c.launch(ctx, c.scheduler()) })
	run(2, func() error { return c.launch(ctx, c.kwok(kwokConfig)) })
	if o.Injector != nil && !o.Injector.Deferred {
		run(3, func() error { return c.startInjector(ctx, cs, crds) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	o.Logf("creating %d kwok nodes", o.Nodes)
	if err := c.createNodes(ctx, cs); err != nil {
		return nil, err
	}
	if err := c.waitNodesReady(ctx, cs); err != nil {
		return nil, err
	}
	if err := c.writeState(); err != nil {
		return nil, err
	}
	c.watchFailures()
	o.Logf("cluster %s is up after %s (kubeconfig %s)", c.Name, time.Since(began).Round(100*time.Millisecond), c.Kubeconfig)
	return c, nil
}

// prepareDir creates dir and clears the state of a previous run, refusing
// while processes recorded in dir/pids are still alive.
func prepareDir(dir string) error {
	// Refuse a folder with other content: the clean-up below removes files.
	if entries, err := os.ReadDir(dir); err == nil {
		ours := map[string]bool{markerFile: true, "logs": true, "pids": true, "ready": true}
		marked := false
		for _, e := range entries {
			marked = marked || e.Name() == markerFile
		}
		for _, e := range entries {
			if !marked && !ours[e.Name()] {
				return fmt.Errorf("localcluster: refusing to use %s: it holds %q and was not created by localcluster (no %s file)",
					dir, e.Name(), markerFile)
			}
		}
	}
	for _, sub := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("localcluster: %w", err)
		}
	}
	for _, name := range append(binaries, IstioInjector) {
		f := filepath.Join(dir, "pids", name+".pid")
		if pid := ReadPID(f); ProcessAlive(pid, dir+"/") {
			return fmt.Errorf("localcluster: a cluster is already running in %s (%s has live pid %d); stop it first",
				dir, filepath.Base(f), pid)
		}
		_ = os.Remove(f)
	}
	for _, stale := range []string{"etcd", "pki", "certs", "kwok", "kubeconfig", stateFile} {
		if err := os.RemoveAll(filepath.Join(dir, stale)); err != nil {
			return fmt.Errorf("localcluster: clearing %s: %w", stale, err)
		}
	}
	for _, name := range append(binaries, InjectorDouble, IstioInjector, KumaInjectorDouble) {
		_ = os.Remove(filepath.Join(dir, "logs", name+".log"))
	}
	return os.WriteFile(filepath.Join(dir, markerFile),
		[]byte("state folder of a test/localcluster cluster; `localcluster down` stops it, then it can be deleted\n"), 0o644)
}

// markerFile marks a folder as a localcluster state folder.
const markerFile = ".localcluster"

// portRef is one port of a component.
type portRef struct {
	ptr *int
	use string
}

func (c *Cluster) portRefs() []portRef {
	refs := []portRef{
		{&c.Ports.EtcdClient, "etcd client"},
		{&c.Ports.EtcdPeer, "etcd peer"},
		{&c.Ports.APIServer, "kube-apiserver --secure-port"},
		{&c.Ports.ControllerManager, "kube-controller-manager --secure-port"},
		{&c.Ports.Scheduler, "kube-scheduler --secure-port"},
	}
	if c.opts.Injector != nil && !c.opts.Injector.KumaOnly {
		refs = append(refs, portRef{&c.Ports.Webhook, "injector webhook"})
	}
	if c.opts.Injector.kuma() {
		refs = append(refs, portRef{&c.Ports.KumaWebhook, "Kuma injector double webhook"})
	}
	return refs
}

// assignPorts checks the fixed ports and picks the others.
func (c *Cluster) assignPorts() error {
	var missing []*int
	for _, r := range c.portRefs() {
		if *r.ptr != 0 {
			if err := checkPortFree(*r.ptr, r.use); err != nil {
				return err
			}
			continue
		}
		missing = append(missing, r.ptr)
	}
	free, err := freePorts(len(missing))
	if err != nil {
		return err
	}
	for i, p := range missing {
		*p = free[i]
		c.auto[p] = true
	}
	return nil
}

// component describes one child process.
type component struct {
	name, bin string
	ports     []portRef
	args      func() []string
	ready     func(ctx context.Context) error
}

// launch starts a component and waits until it is ready. A component that
// dies because one of its ports was taken meanwhile is retried on new free
// ports (when those were picked, not fixed).
func (c *Cluster) launch(ctx context.Context, comp component) error {
	bin := filepath.Join(c.opts.BinDir, comp.bin)
	for attempt := 1; ; attempt++ {
		logPath := filepath.Join(c.Dir, "logs", comp.name+".log")
		offset := fileSize(logPath)
		p, err := startProcess(c.Dir, comp.name, bin, comp.args())
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.procs[comp.name] = p
		c.mu.Unlock()
		err = waitReady(ctx, p, comp.ready)
		if err == nil {
			return nil
		}
		_ = p.terminate(5 * time.Second)
		if !strings.Contains(logSince(logPath, offset), "address already in use") {
			return err
		}
		var taken []portRef
		allAuto := true
		out := logSince(logPath, offset)
		for _, r := range comp.ports {
			if strings.Contains(out, ":"+strconv.Itoa(*r.ptr)) {
				taken = append(taken, r)
				allAuto = allAuto && c.auto[r.ptr]
			}
		}
		if len(taken) == 0 {
			taken, allAuto = comp.ports, false
		}
		if !allAuto || attempt >= 3 {
			return &PortInUseError{Port: *taken[0].ptr, Use: taken[0].use, Err: err}
		}
		free, ferr := freePorts(len(taken))
		if ferr != nil {
			return ferr
		}
		for i, r := range taken {
			c.opts.Logf("%s: port %d (%s) was taken meanwhile; retrying on %d", comp.name, *r.ptr, r.use, free[i])
			*r.ptr = free[i]
		}
	}
}

// waitReady polls ready until it succeeds, the process exits or ctx ends.
func waitReady(ctx context.Context, p *process, ready func(context.Context) error) error {
	var last error
	for {
		if p.exited() {
			return p.exitError()
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = ready(rctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localcluster: %s not ready: %w (last check: %v)\n--- last lines of %s ---\n%s",
				p.name, ctx.Err(), last, p.logPath, tail(p.logPath, 25))
		case <-p.done:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// httpCheck GETs url and wants 200 (and, if want is set, a body containing it).
func httpCheck(client *http.Client, url, bearer, want string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		if want != "" && !strings.Contains(string(body), want) {
			return fmt.Errorf("%s: %s", url, strings.TrimSpace(string(body)))
		}
		return nil
	}
}

var insecureClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed health endpoints on 127.0.0.1
}}

func (c *Cluster) caClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (c *Cluster) certDir(name string) string {
	d := filepath.Join(c.Dir, "certs", name)
	_ = os.MkdirAll(d, 0o700)
	return d
}

func (c *Cluster) etcd() component {
	refs := c.portRefs()
	return component{
		name: Etcd, bin: "etcd", ports: refs[0:2],
		args: func() []string {
			client := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient)
			peer := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdPeer)
			return []string{
				"--name=default",
				"--data-dir=" + filepath.Join(c.Dir, "etcd"),
				"--listen-client-urls=" + client,
				"--advertise-client-urls=" + client,
				"--listen-peer-urls=" + peer,
				"--initial-advertise-peer-urls=" + peer,
				"--initial-cluster=default=" + peer,
				"--initial-cluster-state=new",
				// A throwaway test cluster: durability is not needed, speed is.
				"--unsafe-no-fsync=true",
				"--log-level=warn",
			}
		},
		ready: func(ctx context.Context) error {
			return httpCheck(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", c.Ports.EtcdClient), "", `"health":"true"`)(ctx)
		},
	}
}

func (c *Cluster) apiserver() component {
	refs := c.portRefs()
	return component{
		name: APIServer, bin: "kube-apiserver", ports: refs[2:3],
		args: func() []string {
			return append([]string{
				fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.Ports.EtcdClient),
				fmt.Sprintf("--secure-port=%d", c.Ports.APIServer),
				"--bind-address=127.0.0.1",
				"--advertise-address=127.0.0.1",
				// Endpoints may not hold loopback addresses: do not maintain
				// the default/kubernetes endpoints (nothing in-cluster uses them).
				"--endpoint-reconciler-type=none",
				"--cert-dir=" + c.certDir(APIServer),
				"--tls-cert-file=" + c.pki.apiserverCertFile,
				"--tls-private-key-file=" + c.pki.apiserverKeyFile,
				"--token-auth-file=" + c.pki.tokenFile,
				"--service-account-key-file=" + c.pki.saPubFile,
				"--service-account-signing-key-file=" + c.pki.saKeyFile,
				"--service-account-issuer=" + serviceAcctIssue,
				"--service-cluster-ip-range=" + serviceCIDR,
				"--authorization-mode=Node,RBAC",
				"--allow-privileged=true",
				"--profiling=false",
			}, c.opts.APIServerArgs...)
		},
		ready: func(ctx context.Context) error {
			return httpCheck(c.caClient(), fmt.Sprintf("https://127.0.0.1:%d/readyz", c.Ports.APIServer), c.pki.adminToken, "")(ctx)
		},
	}
}

func (c *Cluster) controllerManager() component {
	refs := c.portRefs()
	return component{
		name: ControllerManager, bin: "kube-controller-manager", ports: refs[3:4],
		args: func() []string {
			return append([]string{
				"--kubeconfig=" + c.Kubeconfig,
				"--controllers=*",
				"--leader-elect=false",
				"--use-service-account-credentials=false",
				"--service-account-private-key-file=" + c.pki.saKeyFile,
				"--root-ca-file=" + c.pki.caFile,
				"--cluster-signing-cert-file=" + c.pki.caFile,
				"--cluster-signing-key-file=" + c.pki.caKeyFile,
				"--cluster-name=" + c.Name,
				fmt.Sprintf("--secure-port=%d", c.Ports.ControllerManager),
				"--bind-address=127.0.0.1",
				"--cert-dir=" + c.certDir(ControllerManager),
			}, c.opts.ControllerManagerArgs...)
		},
		ready: func(ctx context.Context) error {
			return httpCheck(insecureClient, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.Ports.ControllerManager), "", "")(ctx)
		},
	}
}

func (c *Cluster) scheduler() component {
	refs := c.portRefs()
	return component{
		name: Scheduler, bin: "kube-scheduler", ports: refs[4:5],
		args: func() []string {
			return []string{
				"--kubeconfig=" + c.Kubeconfig,
				"--leader-elect=false",
				fmt.Sprintf("--secure-port=%d", c.Ports.Scheduler),
				"--bind-address=127.0.0.1",
				"--cert-dir=" + c.certDir(Scheduler),
			}
		},
		ready: func(ctx context.Context) error {
			return httpCheck(insecureClient, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.Ports.Scheduler), "", "")(ctx)
		},
	}
}

// kwokNodeAnnotation marks the nodes kwok manages.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

func (c *Cluster) kwok(config string) component {
	var started time.Time
	return component{
		name: Kwok, bin: "kwok",
		args: func() []string {
			started = time.Now()
			return []string{
				"--kubeconfig=" + c.Kubeconfig,
				"--config=" + config,
				"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
			}
		},
		// kwok serves nothing here; it is "ready" when it has survived its
		// configuration loading. Nodes turning Ready prove the rest.
		ready: func(context.Context) error {
			if time.Since(started) < time.Second {
				return errors.New("kwok starting")
			}
			return nil
		},
	}
}

func (c *Cluster) writeKubeconfig() error {
	c.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", c.Ports.APIServer)
	name := "localcluster-" + c.Name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: c.APIServerURL, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: c.pki.adminToken}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("localcluster: writing kubeconfig: %w", err)
	}
	c.RESTConfig = &rest.Config{
		Host:            c.APIServerURL,
		BearerToken:     c.pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caPEM},
		QPS:             50,
		Burst:           100,
	}
	return nil
}

// NodeName is the name of fake node i (1-based).
func NodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

func (c *Cluster) createNodes(ctx context.Context, cs kubernetes.Interface) error {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	for i := 1; i <= c.opts.Nodes; i++ {
		name := NodeName(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Annotations: map[string]string{
					kwokNodeAnnotation:             "fake",
					"node.alpha.kubernetes.io/ttl": "0",
				},
				Labels: map[string]string{
					"type":                   "kwok",
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"kubernetes.io/hostname": name,
				},
			},
			Status: corev1.NodeStatus{
				Allocatable: res, Capacity: res,
				// kwok's node-initialize stage keeps addresses that are set;
				// pods get hostIP from here.
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.1.0.%d", i)},
					{Type: corev1.NodeHostName, Address: name},
				},
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("localcluster: creating node %s: %w", name, err)
		}
	}
	return nil
}

// waitNodesReady waits until every fake node is Ready without the
// not-ready/unreachable taints (removed by the node lifecycle controller),
// and the controller manager has created the default service account.
func (c *Cluster) waitNodesReady(ctx context.Context, cs kubernetes.Interface) error {
	check := func(ctx context.Context) error {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return err
		}
		ready := 0
		var notes []string
		for _, n := range nodes.Items {
			ok := false
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ok = true
				}
			}
			for _, t := range n.Spec.Taints {
				if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
					ok = false
					notes = append(notes, n.Name+" tainted "+t.Key)
				}
			}
			if ok {
				ready++
			}
		}
		if ready < c.opts.Nodes {
			return fmt.Errorf("%d/%d nodes ready %v", ready, c.opts.Nodes, notes)
		}
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return fmt.Errorf("default service account: %w", err)
		}
		return nil
	}
	var last error
	for {
		if err := c.anyExited(); err != nil {
			return err
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localcluster: nodes not ready: %w (last check: %v)\n--- last lines of kwok log ---\n%s",
				ctx.Err(), last, tail(filepath.Join(c.Dir, "logs", Kwok+".log"), 25))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (c *Cluster) anyExited() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.exited() && !p.stopping.Load() {
			return p.exitError()
		}
	}
	return nil
}

func (c *Cluster) writeState() error {
	s := State{
		Name: c.Name, Dir: c.Dir, Kubeconfig: c.Kubeconfig, APIServerURL: c.APIServerURL,
		Ports: c.Ports, PIDs: c.PIDs(), InjectorURL: c.InjectorURL, KumaInjectorURL: c.KumaInjectorURL, StartedAt: time.Now(),
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, stateFile), append(b, '\n'), 0o644)
}

// PIDs returns the pid of every child process by component name (each is
// also the id of the child's process group).
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for name, p := range c.procs {
		out[name] = p.pid()
	}
	return out
}

// Failed delivers an error when a child process exits while the cluster
// should be running (not during Stop).
func (c *Cluster) Failed() <-chan error { return c.failures }

func (c *Cluster) watchFailures() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = make(chan error, len(c.procs))
	for _, p := range c.procs {
		go func() {
			<-p.done
			if !p.stopping.Load() {
				c.failures <- p.exitError()
			}
		}()
	}
}

// Stop terminates every process (SIGTERM to its process group, SIGKILL after
// Options.StopGrace), waits for them, stops the in-process mesh double and removes the
// pid files and cluster.json. The state folder (logs, etcd data) stays for
// inspection; the next Start in it clears it. Stop is idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		procs := c.procs
		c.mu.Unlock()
		grace := c.opts.StopGrace
		if grace <= 0 {
			grace = 15 * time.Second
		}
		var (
			mu   sync.Mutex
			errs []error
		)
		stop := func(names ...string) {
			var wg sync.WaitGroup
			for _, n := range names {
				p := procs[n]
				if p == nil {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := p.terminate(grace); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
		}
		// Clients of the API server first, then the server, then storage.
		stop(Kwok, Scheduler, ControllerManager, IstioInjector)
		for _, srv := range []*http.Server{c.injector, c.kumaServer} {
			if srv != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(ctx)
				cancel()
			}
		}
		stop(APIServer)
		stop(Etcd)
		if c.Dir != "" {
			_ = os.Remove(filepath.Join(c.Dir, stateFile))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// groupAlive reports whether any process of the group pgid is alive.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// Alive reports which recorded child processes (or members of their process
// groups) still exist.
func (c *Cluster) Alive() []string {
	var out []string
	for name, pid := range c.PIDs() {
		if groupAlive(pid) || ProcessAlive(pid, "") {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	return out
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after Options.StopGrace), leaving etcd
// and every client running, as an API server outage does. StartAPIServer brings it back.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	p := c.procs[APIServer]
	c.mu.Unlock()
	if p == nil {
		return errors.New("localcluster: kube-apiserver is not running")
	}
	grace := c.opts.StopGrace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	return p.terminate(grace)
}

// StartAPIServer starts kube-apiserver again, with the same flags and port, and waits until it
// is ready. The restarted process is not watched by Failed.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	return c.launch(ctx, c.apiserver())
}

// RestartControllerManager stops kube-controller-manager and starts it again with the same flags.
func (c *Cluster) RestartControllerManager(ctx context.Context) error {
	c.mu.Lock()
	p := c.procs[ControllerManager]
	c.mu.Unlock()
	if p != nil {
		if err := p.terminate(5 * time.Second); err != nil {
			return err
		}
	}
	return c.launch(ctx, c.controllerManager())
}
