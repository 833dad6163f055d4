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

// RunOperator starts the operator binary with args, logging to logPath, and waits until its
// controller's workers start. The returned stop sends SIGTERM and waits (SIGKILL after 20 s).
// The process gets its own process group and dies with the caller.
func RunOperator(manager, logPath string, args ...string) (stop func(), err error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(manager, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case err := <-exited:
			data, _ := os.ReadFile(logPath)
			return false, fmt.Errorf("the operator exited (%v) before its workers started; log %s:\n%s", err, logPath, data)
		default:
		}
		data, _ := os.ReadFile(logPath)
		return bytes.Contains(data, []byte("Starting workers")), nil
	})
	if ready != nil {
		_ = cmd.Process.Kill()
		_ = logFile.Close()
		return nil, ready
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited: //nolint:errcheck // exit status after our SIGTERM is irrelevant
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = logFile.Close()
	}, nil
}
