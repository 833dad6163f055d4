// Command injector-double serves the mesh double (test/meshdouble) as a
// standalone MutatingAdmissionWebhook at /inject over HTTPS: Istio's sidecar
// injection and probe rewrite, plus the probe-verdict annotation that the
// kwok stages in hack/kwok act out.
//
// test/localcluster runs the same handler in-process (`localcluster up
// --mesh-double`) and registers it; this binary is for running it on its
// own, e.g. against another cluster:
//
//	injector-double --listen 127.0.0.1:9443 --cert tls.crt --key tls.key \
//	    --kubeconfig ~/.kube/config [--rewrite-app-http-probe]
//
// Register it with a MutatingWebhookConfiguration whose clientConfig.url is
// https://<listen>/inject (see localcluster.InjectorWebhookConfiguration).
// Without --kubeconfig, namespaces are taken to have no labels other than
// kubernetes.io/metadata.name and there are no PeerAuthentications.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "injector-double:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:9443", "address to serve HTTPS on")
	certFile := flag.String("cert", "", "serving certificate (PEM)")
	keyFile := flag.String("key", "", "serving key (PEM)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig to read namespace labels and PeerAuthentications from (optional)")
	rewrite := flag.Bool("rewrite-app-http-probe", false,
		"mesh-wide sidecarInjectorWebhook.rewriteAppHTTPProbe (Istio's default is true; false: only the pod annotation rewrites)")
	root := flag.String("root-namespace", "istio-system", "Istio root namespace (mesh-wide PeerAuthentications)")
	flag.Parse()
	if *certFile == "" || *keyFile == "" {
		return errors.New("--cert and --key are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}

	var handler http.Handler
	if *kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			return err
		}
		h, err := localcluster.NewInjectorHandler(cfg, localcluster.InjectorOptions{Double: true, RewriteAppHTTPProbe: *rewrite, RootNamespace: *root})
		if err != nil {
			return err
		}
		handler = h
	} else {
		handler = &meshdouble.VerdictWebhook{
			Injector: &meshdouble.Webhook{Config: meshdouble.Config{RewriteAppHTTPProbe: *rewrite}},
			Modes:    meshdouble.OperatorModes(*root, nil),
		}
	}

	srv := localcluster.NewInjectorServer(handler, cert, os.Stderr)
	srv.Addr = *listen
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS("", "") }()
	fmt.Fprintf(os.Stderr, "injector-double: serving https://%s%s (rewriteAppHTTPProbe=%v)\n", *listen, meshdouble.WebhookPath, *rewrite)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
