// Command istio-injector serves Istio's own sidecar injection webhook
// (istio/istio pkg/kube/inject) with the istio-discovery chart's injector
// configuration, rendered by Istio's own renderer, for a local control plane.
// It registers the chart's MutatingWebhookConfiguration, with its selectors
// unchanged and its clientConfig pointed at itself, and adds the test
// ground's kubelet verdict (test/meshdouble VerdictRules) to every pod it
// admits, with the mTLS modes resolved by Istio's own PeerAuthentication code
// (pilot/pkg/security/authn).
//
// It is test infrastructure: test/localcluster starts it as a child process.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/istio/istiod"
	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "istio-injector:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to register with (required)")
	listen := flag.String("listen", "127.0.0.1:9443", "address to serve HTTPS on")
	certFile := flag.String("tls-cert-file", "", "serving certificate (required)")
	keyFile := flag.String("tls-private-key-file", "", "serving key (required)")
	caFile := flag.String("client-ca-file", "", "CA bundle the API server verifies the serving certificate with (required)")
	rewrite := flag.Bool("rewrite-app-http-probe", true, "the chart's values.sidecarInjectorWebhook.rewriteAppHTTPProbe")
	root := flag.String("root-namespace", "istio-system", "meshConfig.rootNamespace")
	flag.Parse()
	if *kubeconfig == "" || *certFile == "" || *keyFile == "" || *caFile == "" {
		return errors.New("--kubeconfig, --tls-cert-file, --tls-private-key-file and --client-ca-file are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}
	caBundle, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}

	chart, err := istiod.Render(istiod.RenderOptions{RewriteAppHTTPProbe: *rewrite, RootNamespace: *root})
	if err != nil {
		return err
	}
	injector, err := istiod.NewInjector(chart)
	if err != nil {
		return err
	}
	statusPort, err := chart.StatusPort()
	if err != nil {
		return err
	}
	modes, err := newModes(cfg, *root)
	if err != nil {
		return err
	}
	verdicts := &meshdouble.VerdictWebhook{Injector: injector, MeshStatusPort: statusPort, Modes: modes.resolve}

	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.Handle(istiod.InjectPath, verdicts)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "webhook not registered yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	srv := &http.Server{
		Addr: *listen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			mux.ServeHTTP(rec, r)
			if r.URL.Path != "/readyz" && r.URL.Path != "/healthz" {
				logger.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.code, time.Since(start).Round(time.Microsecond))
			}
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS("", "") }()

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	url := "https://" + *listen + istiod.InjectPath
	if err := register(ctx, cs, chart, url, caBundle); err != nil {
		return err
	}
	ready.Store(true)
	logger.Printf("serving Istio's injector at %s (rewriteAppHTTPProbe=%v, rootNamespace=%s)", url, *rewrite, *root)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// register creates or updates the chart's MutatingWebhookConfiguration with
// every webhook's clientConfig pointed at url; selectors, rules and policies
// stay as the chart renders them.
func register(ctx context.Context, cs kubernetes.Interface, chart *istiod.Chart, url string, caBundle []byte) error {
	want, err := chart.WebhookConfiguration(url, caBundle)
	if err != nil {
		return err
	}
	return localcluster.ApplyWebhookConfiguration(ctx, cs, want)
}

// modes resolves mTLS modes with Istio's code over the cluster's
// PeerAuthentications, rebuilding Istio's index only when they changed.
type modes struct {
	cl   client.Client
	root string

	mu   sync.Mutex
	key  string
	mtls *istiod.MTLS
}

func newModes(cfg *rest.Config, root string) (*modes, error) {
	scheme := k8sruntime.NewScheme()
	if err := securityv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &modes{cl: cl, root: root}, nil
}

func (m *modes) resolve(ctx context.Context, namespace string, podLabels map[string]string) (meshdouble.PortModes, error) {
	var list securityv1.PeerAuthenticationList
	if err := m.cl.List(ctx, &list); err != nil {
		// Istio's CRDs removed: no PeerAuthentication applies any more.
		if !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("listing PeerAuthentications: %w", err)
		}
		list.Items = nil
	}
	keys := make([]string, 0, len(list.Items))
	for _, pa := range list.Items {
		keys = append(keys, string(pa.UID)+"/"+pa.ResourceVersion)
	}
	sort.Strings(keys)
	key := strings.Join(keys, ",")

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mtls == nil || key != m.key {
		mtls, err := istiod.NewMTLS(m.root, list.Items)
		if err != nil {
			return nil, err
		}
		m.mtls, m.key = mtls, key
	}
	return m.mtls.PortModes(namespace, podLabels), nil
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
