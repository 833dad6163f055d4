package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is one child of the cluster, leader of its own process group.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	pidPath string
	log     *os.File
	done    chan struct{}
	waitErr error
	// stopping is set before Stop signals the process, so that its exit is
	// not reported as a failure.
	stopping atomic.Bool
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProcess runs bin with args, logging to <dir>/logs/<name>.log
// (appended, so a retried start keeps the earlier attempt) and writing
// <dir>/pids/<name>.pid.
func startProcess(dir, name, bin string, args []string) (*process, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(f, "==== %s %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Stop signals the whole group.
		Setpgid: true,
		// If the process that started the cluster dies without Stop (kill
		// -9, a test binary killed on timeout), the kernel kills the child.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("localcluster: starting %s: %w", name, err)
	}
	p := &process{
		name: name, cmd: cmd, logPath: logPath, log: f,
		pidPath: filepath.Join(dir, "pids", name+".pid"),
		done:    make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	if err := os.WriteFile(p.pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = p.terminate(time.Second)
		return nil, err
	}
	return p, nil
}

// childEnv is the environment of the children, without variables that would
// point them at another cluster.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "ETCDCTL_") || strings.HasPrefix(kv, "ETCD_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// terminate sends SIGTERM to the process group, SIGKILL after grace, waits
// for the leader and then kills whatever is left of the group.
func (p *process) terminate(grace time.Duration) error {
	p.stopping.Store(true)
	pgid := p.pid()
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("localcluster: %s (pid %d) did not exit after SIGKILL", p.name, pgid)
			}
		}
	}
	// Leftover group members (none of these binaries fork, but be sure).
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localcluster: killing process group of %s: %w", p.name, err)
	}
	_ = os.Remove(p.pidPath)
	return nil
}

// exitError describes an unexpected exit, with the end of the log.
func (p *process) exitError() error {
	return fmt.Errorf("localcluster: %s exited: %v\n--- last lines of %s ---\n%s",
		p.name, p.waitErr, p.logPath, tail(p.logPath, 25))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logSince returns the part of a log written after offset.
func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// ProcessAlive reports whether pid is a live process whose command line
// mentions marker (used to tell our children from recycled pids).
func ProcessAlive(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil {
		// A zombie is not alive: "pid (comm) Z ...".
		if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
			return false
		}
	}
	return marker == "" || bytes.Contains(b, []byte(marker))
}

// ReadPID reads a pid file; 0 when absent or unreadable.
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}
