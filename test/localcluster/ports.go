package localcluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// Ports are the 127.0.0.1 ports of one cluster. A zero field in
// Options.Ports is picked free at Start.
type Ports struct {
	EtcdClient        int `json:"etcdClient"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiServer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
	// Webhook is the mesh double's injector (only with Options.Injector).
	Webhook int `json:"webhook,omitempty"`
	// KumaWebhook is the Kuma injector double (only with InjectorOptions.Kuma or KumaOnly).
	KumaWebhook int `json:"kumaWebhook,omitempty"`
}

// PortInUseError reports a port that another process holds.
type PortInUseError struct {
	Port int
	// Use is what the port was meant for, e.g. "kube-apiserver --secure-port".
	Use string
	Err error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("localcluster: port 127.0.0.1:%d (%s) is already in use: %v", e.Port, e.Use, e.Err)
}

func (e *PortInUseError) Unwrap() error { return e.Err }

var (
	// portMu and handedOut keep clusters started side by side in one
	// process from being given the same free port.
	portMu    sync.Mutex
	handedOut = map[int]bool{}
)

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago and were not handed out before in this process.
func freePorts(n int) ([]int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localcluster: picking a free port: %w", err)
		}
		held = append(held, l) // hold it so the next Listen gets another one
		p := l.Addr().(*net.TCPAddr).Port
		if handedOut[p] {
			continue
		}
		handedOut[p] = true
		out = append(out, p)
	}
	return out, nil
}

// checkPortFree fails with a PortInUseError when port cannot be bound.
func checkPortFree(port int, use string) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &PortInUseError{Port: port, Use: use, Err: err}
		}
		return fmt.Errorf("localcluster: port 127.0.0.1:%d (%s): %w", port, use, err)
	}
	return l.Close()
}
