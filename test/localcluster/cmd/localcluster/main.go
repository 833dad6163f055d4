// Command localcluster starts and stops local control planes (see package
// test/localcluster) for `make cluster-up` / `make cluster-down`.
//
//	localcluster up     --name NAME [--dir DIR] [--nodes 2] [--mesh=istio|double|kuma|istio+kuma|double+kuma|none [--rewrite-app-http-probe]]
//	                    [--kuma-probe-proxy-port=9001] [--kuma-virtual-probes]
//	localcluster down   --name NAME [--dir DIR]
//	localcluster status --name NAME [--dir DIR]
//
// `up` starts a supervisor (`localcluster serve ...`, in its own session,
// logging to DIR/logs/supervisor.log) that runs the cluster, waits until the
// cluster is ready, prints how to use it and exits. The supervisor keeps the
// control-plane processes (Istio's injector, or the in-process mesh double webhook) running
// until `down` sends it SIGTERM. Every child process dies with the
// supervisor.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

const usage = `usage: localcluster <command> --name NAME [flags]

commands:
  up      start the cluster in the background and wait until it is ready
  down    stop the cluster and wait until all its processes are gone
  status  show whether the cluster is running (exit 1 if it is not)
  serve   run the cluster in the foreground (used by up)

Run "localcluster <command> -h" for the flags of a command.
`

type common struct {
	name, dir, binDir string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "name", "local", "cluster name")
	fs.StringVar(&c.dir, "dir", "", "state folder (default <repo>/.local/clusters/<name>)")
	fs.StringVar(&c.binDir, "bin-dir", "", "folder with etcd, kube-apiserver, ... (default <repo>/bin)")
}

// resolve makes dir absolute, defaulting it from the repository.
func (c *common) resolve() error {
	if c.dir == "" {
		root, err := localcluster.RepoRoot()
		if err != nil {
			return err
		}
		c.dir = localcluster.DefaultDir(root, c.name)
	}
	abs, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	c.dir = abs
	if c.binDir != "" {
		if c.binDir, err = filepath.Abs(c.binDir); err != nil {
			return err
		}
	}
	return nil
}

func (c *common) supervisorPIDFile() string { return filepath.Join(c.dir, "pids", "supervisor.pid") }
func (c *common) readyFile() string         { return filepath.Join(c.dir, "ready") }
func (c *common) supervisorLog() string     { return filepath.Join(c.dir, "logs", "supervisor.log") }

// supervisorPID is the live supervisor's pid, or 0.
func (c *common) supervisorPID() int {
	pid := localcluster.ReadPID(c.supervisorPIDFile())
	// The supervisor's command line holds the folder as its own argument.
	if localcluster.ProcessAlive(pid, "\x00"+c.dir+"\x00") {
		return pid
	}
	return 0
}

// componentPIDs are the live control-plane processes recorded in pids/.
func (c *common) componentPIDs() map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(c.dir, "pids", "*.pid"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		if name == "supervisor" {
			continue
		}
		if pid := localcluster.ReadPID(f); localcluster.ProcessAlive(pid, c.dir+"/") {
			out[name] = pid
		}
	}
	return out
}

type startFlags struct {
	nodes      int
	mesh       string
	meshDouble bool
	rewrite    bool
	rootNS     string
	timeout    time.Duration
	kwokStages string
	podStages  string
	// kumaProbeProxyPort is Kuma's applicationProbeProxyPort (0: off); kumaVirtualProbes its
	// virtualProbesEnabled.
	kumaProbeProxyPort uint
	kumaVirtualProbes  bool
}

func (s *startFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&s.nodes, "nodes", 2, "number of fake kwok nodes")
	fs.StringVar(&s.mesh, "mesh", "istio",
		"sidecar injector to run, with Istio's CRDs installed: istio (Istio's own injector, bin/istio-injector), "+
			"double (the in-process mesh double, for when bin/istio-injector cannot be built), "+
			"kuma (the in-process double of Kuma's v2.14.3 injector, with Kuma's CRDs), "+
			"istio+kuma or double+kuma (both: namespaces labelled istio-injection=enabled get Istio, "+
			"kuma.io/sidecar-injection=enabled Kuma), none")
	fs.BoolVar(&s.meshDouble, "mesh-double", false, "same as --mesh=double")
	fs.BoolVar(&s.rewrite, "rewrite-app-http-probe", false,
		"mesh-wide values.sidecarInjectorWebhook.rewriteAppHTTPProbe (Istio's default is true; "+
			"false makes the rewrite opt-in through the pod annotation)")
	fs.StringVar(&s.rootNS, "root-namespace", "istio-system", "Istio root namespace (meshConfig.rootNamespace)")
	fs.UintVar(&s.kumaProbeProxyPort, "kuma-probe-proxy-port", 9001,
		"Kuma's control-plane default runtime.kubernetes.injector.applicationProbeProxyPort (9001, Kuma's default; 0 turns the application probe proxy off)")
	fs.BoolVar(&s.kumaVirtualProbes, "kuma-virtual-probes", false, "Kuma's control-plane default virtualProbesEnabled (false, Kuma 2.14's default)")
	fs.DurationVar(&s.timeout, "timeout", 5*time.Minute, "how long to wait for the cluster to be ready")
	fs.StringVar(&s.kwokStages, "kwok-stages", "", "kwok's kustomize/stage folder (default: from the sigs.k8s.io/kwok module)")
	fs.StringVar(&s.podStages, "pod-stages", "", "pod stages replacing kwok's pod-ready (default <repo>/hack/kwok/pod-stages.yaml)")
}

// meshName is --mesh, with --mesh-double as --mesh=double.
func (s *startFlags) meshName() string {
	if s.meshDouble {
		return "double"
	}
	return s.mesh
}

func (s *startFlags) args() []string {
	a := []string{
		"--nodes=" + strconv.Itoa(s.nodes),
		"--timeout=" + s.timeout.String(),
		"--root-namespace=" + s.rootNS,
		"--mesh=" + s.meshName(),
	}
	if s.rewrite {
		a = append(a, "--rewrite-app-http-probe")
	}
	a = append(a, "--kuma-probe-proxy-port="+strconv.FormatUint(uint64(s.kumaProbeProxyPort), 10))
	if s.kumaVirtualProbes {
		a = append(a, "--kuma-virtual-probes")
	}
	if s.kwokStages != "" {
		a = append(a, "--kwok-stages="+s.kwokStages)
	}
	if s.podStages != "" {
		a = append(a, "--pod-stages="+s.podStages)
	}
	return a
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	code := 0
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "up":
		err = up(args)
	case "serve":
		err = serve(args)
	case "down":
		err = down(args)
	case "status":
		code, err = status(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "localcluster: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", strings.TrimPrefix(err.Error(), "localcluster: "))
		os.Exit(1)
	}
	os.Exit(code)
}

func parse(name string, args []string, register ...func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet("localcluster "+name, flag.ExitOnError)
	for _, r := range register {
		r(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

func up(args []string) error {
	var c common
	var s startFlags
	if err := parse("up", args, c.register, s.register); err != nil {
		return err
	}
	if err := c.resolve(); err != nil {
		return err
	}
	if pid := c.supervisorPID(); pid != 0 {
		fmt.Printf("cluster %q is already running (supervisor pid %d)\n", c.name, pid)
		return printUsage(&c)
	}
	// Fail fast on what the supervisor would fail on anyway.
	binDir := c.binDir
	if binDir == "" {
		root, err := localcluster.RepoRoot()
		if err != nil {
			return err
		}
		binDir = filepath.Join(root, "bin")
	}
	if err := localcluster.CheckBinaries(binDir); err != nil {
		return err
	}
	for _, sub := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			return err
		}
	}
	_ = os.Remove(c.readyFile())
	logf, err := os.Create(c.supervisorLog())
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	serveArgs := append([]string{"serve", "--name=" + c.name, "--dir", c.dir}, s.args()...)
	if c.binDir != "" {
		serveArgs = append(serveArgs, "--bin-dir="+c.binDir)
	}
	cmd := exec.Command(exe, serveArgs...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives the shell and make
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(c.supervisorPIDFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fmt.Printf("starting cluster %q (supervisor pid %d, log %s) ...\n", c.name, cmd.Process.Pid, c.supervisorLog())

	deadline := time.After(s.timeout + 30*time.Second)
	for {
		if _, err := os.Stat(c.readyFile()); err == nil {
			fmt.Printf("cluster %q is up after %s\n", c.name, time.Since(began).Round(100*time.Millisecond))
			return printUsage(&c)
		}
		select {
		case err := <-done:
			return fmt.Errorf("the supervisor exited (%v) before the cluster was ready; last lines of %s:\n%s",
				err, c.supervisorLog(), lastLines(c.supervisorLog(), 30))
		case <-deadline:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done: //nolint:errcheck // exit status after our SIGTERM is irrelevant: the error below is the timeout
			case <-time.After(60 * time.Second):
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			}
			return fmt.Errorf("cluster not ready after %s; see %s", s.timeout, c.supervisorLog())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printUsage(c *common) error {
	st, err := localcluster.ReadState(c.dir)
	if err != nil {
		return fmt.Errorf("reading cluster state: %w", err)
	}
	fmt.Printf("  kubeconfig:  %s\n", st.Kubeconfig)
	fmt.Printf("  API server:  %s\n", st.APIServerURL)
	if st.InjectorURL != "" {
		fmt.Printf("  sidecar injector: %s\n", st.InjectorURL)
	}
	if st.KumaInjectorURL != "" {
		fmt.Printf("  Kuma injector double: %s\n", st.KumaInjectorURL)
	}
	fmt.Printf("  logs:        %s\n", filepath.Join(c.dir, "logs"))
	fmt.Printf("\nUse it:\n  export KUBECONFIG=%s\n  kubectl get nodes\n", st.Kubeconfig)
	fmt.Printf("Stop it:\n  localcluster down --name %s --dir %s   (or: make cluster-down)\n", c.name, c.dir)
	return nil
}

func serve(args []string) error {
	var c common
	var s startFlags
	if err := parse("serve", args, c.register, s.register); err != nil {
		return err
	}
	if err := c.resolve(); err != nil {
		return err
	}
	for _, sub := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.supervisorPIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer func() { _ = os.Remove(c.supervisorPIDFile()) }()
	_ = os.Remove(c.readyFile())
	defer func() { _ = os.Remove(c.readyFile()) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	logf := func(format string, a ...any) {
		fmt.Printf("%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
	}
	opts := localcluster.Options{
		Name:          c.name,
		Dir:           c.dir,
		BinDir:        c.binDir,
		Nodes:         s.nodes,
		KwokStagesDir: s.kwokStages,
		PodStagesFile: s.podStages,
		StartTimeout:  s.timeout,
		Logf:          logf,
	}
	if s.kumaProbeProxyPort > 65535 {
		return fmt.Errorf("--kuma-probe-proxy-port=%d is not a port", s.kumaProbeProxyPort)
	}
	kuma := meshdouble.DefaultKumaOptions()
	kuma.ProbeProxyPort, kuma.VirtualProbesEnabled = uint32(s.kumaProbeProxyPort), s.kumaVirtualProbes
	switch s.meshName() {
	case "istio", "double", "istio+kuma", "double+kuma":
		opts.Injector = &localcluster.InjectorOptions{
			Double:              strings.HasPrefix(s.meshName(), "double"),
			Kuma:                strings.HasSuffix(s.meshName(), "+kuma"),
			KumaConfig:          &kuma,
			RewriteAppHTTPProbe: s.rewrite, RootNamespace: s.rootNS,
		}
	case "kuma":
		if s.rewrite {
			return errors.New("--rewrite-app-http-probe is Istio's setting: --mesh=istio, double, istio+kuma or double+kuma")
		}
		opts.Injector = &localcluster.InjectorOptions{KumaOnly: true, KumaConfig: &kuma}
	case "none":
		if s.rewrite {
			return errors.New("--rewrite-app-http-probe needs a mesh: --mesh=istio or --mesh=double")
		}
	default:
		return fmt.Errorf("--mesh=%s: want istio, double, kuma, istio+kuma, double+kuma or none", s.mesh)
	}
	cl, err := localcluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.readyFile(), []byte(cl.Kubeconfig+"\n"), 0o644); err != nil {
		_ = cl.Stop()
		return err
	}
	logf("ready; pids %v", cl.PIDs())

	var failure error
	select {
	case <-ctx.Done():
		logf("signal received, stopping")
	case failure = <-cl.Failed():
		logf("a component failed, stopping everything: %v", failure)
	}
	_ = os.Remove(c.readyFile())
	if err := cl.Stop(); err != nil {
		logf("stop: %v", err)
		return errors.Join(failure, err)
	}
	logf("stopped")
	return failure
}

func down(args []string) error {
	var c common
	timeout := 90 * time.Second
	if err := parse("down", args, c.register, func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for the processes to exit before killing them")
	}); err != nil {
		return err
	}
	if err := c.resolve(); err != nil {
		return err
	}
	pid := c.supervisorPID()
	if pid == 0 {
		left := c.componentPIDs()
		if len(left) == 0 {
			fmt.Printf("cluster %q is not running\n", c.name)
			return nil
		}
		fmt.Printf("cluster %q has no supervisor but processes are left: %v; killing them\n", c.name, left)
		killGroups(left)
		return waitGone(&c, 0, 15*time.Second)
	}
	fmt.Printf("stopping cluster %q (supervisor pid %d) ...\n", c.name, pid)
	began := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if err := waitGone(&c, pid, timeout); err != nil {
		fmt.Printf("%v; killing\n", err)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		killGroups(c.componentPIDs())
		if err := waitGone(&c, pid, 15*time.Second); err != nil {
			return err
		}
	}
	fmt.Printf("cluster %q stopped after %s\n", c.name, time.Since(began).Round(100*time.Millisecond))
	return nil
}

func killGroups(pids map[string]int) {
	for _, pid := range pids {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitGone waits until the supervisor (if pid != 0) and every recorded
// component process have exited.
func waitGone(c *common, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		supervisor := pid != 0 && localcluster.ProcessAlive(pid, "\x00"+c.dir+"\x00")
		left := c.componentPIDs()
		if !supervisor && len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still running after %s: supervisor=%v components=%v", timeout, supervisor, left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func status(args []string) (int, error) {
	var c common
	if err := parse("status", args, c.register); err != nil {
		return 0, err
	}
	if err := c.resolve(); err != nil {
		return 0, err
	}
	pid := c.supervisorPID()
	comps := c.componentPIDs()
	_, readyErr := os.Stat(c.readyFile())
	switch {
	case pid != 0 && readyErr == nil:
		fmt.Printf("cluster %q is running (supervisor pid %d)\n", c.name, pid)
	case pid != 0:
		fmt.Printf("cluster %q is starting or stopping (supervisor pid %d); see %s\n", c.name, pid, c.supervisorLog())
	case len(comps) > 0:
		fmt.Printf("cluster %q has no supervisor but processes are left (run down to clean up)\n", c.name)
	default:
		fmt.Printf("cluster %q is not running (folder %s)\n", c.name, c.dir)
		return 1, nil
	}
	names := make([]string, 0, len(comps))
	for n := range comps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-24s pid %d\n", n, comps[n])
	}
	if st, err := localcluster.ReadState(c.dir); err == nil && readyErr == nil {
		fmt.Printf("  kubeconfig:  %s\n  API server:  %s\n", st.Kubeconfig, st.APIServerURL)
		if st.InjectorURL != "" {
			fmt.Printf("  sidecar injector: %s\n", st.InjectorURL)
		}
	}
	if pid != 0 && readyErr == nil {
		return 0, nil
	}
	return 1, nil
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
