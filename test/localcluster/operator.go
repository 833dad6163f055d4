package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// WorkersStarted is the log line of a manager whose controller runs (it leads, or needs no lease).
const WorkersStarted = "Starting workers"

// ManagerStarted is the log line of a manager that has started, leading or not.
const ManagerStarted = "Starting manager"

// Operator is one operator process started by StartOperator.
type Operator struct {
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{}
	waitErr error
}

// RunOperator starts the operator binary with args, logging to logPath, and waits until its
// controller's workers start. The returned stop sends SIGTERM and waits (SIGKILL after 20 s).
// The process gets its own process group and dies with the caller.
func RunOperator(manager, logPath string, args ...string) (stop func(), err error) {
	op, err := StartOperator(manager, logPath, WorkersStarted, args...)
	if err != nil {
		return nil, err
	}
	return op.Stop, nil
}

// StartOperator starts the operator binary with args, appending its output to logPath, and waits
// (at most 2 minutes) until a line containing ready appears in what this process logged
// (WorkersStarted, or ManagerStarted for a replica that may wait for the leader lease). The
// process gets its own process group and dies with the caller.
func StartOperator(manager, logPath, ready string, args ...string) (*Operator, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	offset := fileSize(logPath)
	cmd := exec.Command(manager, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	op := &Operator{cmd: cmd, logPath: logPath, logFile: logFile, exited: make(chan struct{})}
	go func() {
		op.waitErr = cmd.Wait()
		close(op.exited)
	}()
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		if !op.Alive() {
			return false, fmt.Errorf("the operator exited (%v) before %q; log %s:\n%s", op.waitErr, ready, logPath, logSince(logPath, offset))
		}
		return bytes.Contains([]byte(logSince(logPath, offset)), []byte(ready)), nil
	})
	if err != nil {
		op.Kill()
		return nil, err
	}
	return op, nil
}

// Pid is the operator's process id.
func (o *Operator) Pid() int { return o.cmd.Process.Pid }

// Alive reports whether the process has not exited.
func (o *Operator) Alive() bool {
	select {
	case <-o.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL, as a crash or an OOM kill would, and waits for the exit.
func (o *Operator) Kill() {
	_ = syscall.Kill(-o.cmd.Process.Pid, syscall.SIGKILL)
	<-o.exited
	_ = o.logFile.Close()
}

// Stop sends SIGTERM and waits (SIGKILL after 20 s).
func (o *Operator) Stop() {
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(20 * time.Second):
		o.Kill()
		return
	}
	_ = o.logFile.Close()
}
