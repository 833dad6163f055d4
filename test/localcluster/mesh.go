package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// InjectorWebhookName is the MutatingWebhookConfiguration the mesh double
// registers.
const InjectorWebhookName = "istio-sidecar-injector-double"

var istioScheme = k8sruntime.NewScheme()

func init() {
	utilruntime.Must(securityv1.AddToScheme(istioScheme))
}

// NewInjectorHandler returns the mesh double (meshdouble.Webhook behind
// meshdouble.VerdictWebhook) wired to a cluster: namespace labels and
// PeerAuthentications are read from the API server at each admission, and
// the verdicts' mTLS modes come from the operator's own resolution
// (meshdouble.OperatorModes). Only for Options.Injector.Double; the real
// injector resolves modes with Istio's code.
func NewInjectorHandler(cfg *rest.Config, o InjectorOptions) (*meshdouble.VerdictWebhook, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: istioScheme})
	if err != nil {
		return nil, err
	}
	listPeerAuthentications := func(ctx context.Context, namespaces ...string) ([]*securityv1.PeerAuthentication, error) {
		var out []*securityv1.PeerAuthentication
		for _, ns := range namespaces {
			var list securityv1.PeerAuthenticationList
			if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return nil, err
			}
			out = append(out, list.Items...)
		}
		return out, nil
	}
	return &meshdouble.VerdictWebhook{
		Injector: &meshdouble.Webhook{
			Config: meshdouble.Config{RewriteAppHTTPProbe: o.RewriteAppHTTPProbe},
			NamespaceLabels: func(ctx context.Context, namespace string) (map[string]string, error) {
				ns, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				return ns.Labels, nil
			},
		},
		Modes: meshdouble.OperatorModes(o.rootNamespace(), listPeerAuthentications),
	}, nil
}

// NewInjectorServer returns an HTTPS server for handler with a request log.
func NewInjectorServer(handler http.Handler, cert tls.Certificate, logw io.Writer) *http.Server {
	logger := log.New(logw, "", log.LstdFlags|log.Lmicroseconds)
	mux := http.NewServeMux()
	mux.Handle(meshdouble.WebhookPath, handler)
	mux.Handle(meshdouble.KumaWebhookPath, handler) // the Kuma double's verdict layer (kuma.go)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			mux.ServeHTTP(rec, r)
			logger.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.code, time.Since(start).Round(time.Microsecond))
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// startInjector installs Istio's CRDs and the istio-system namespace, then
// starts Istio's injector (startIstioInjector) or runs the mesh double's
// webhook in this process and registers it.
func (c *Cluster) startInjector(ctx context.Context, cs kubernetes.Interface, crdFile string) error {
	o := c.opts.Injector
	if o.kuma() {
		if err := c.startKuma(ctx, cs); err != nil {
			return err
		}
		if o.KumaOnly {
			return nil
		}
	}
	if err := InstallCRDs(ctx, c.RESTConfig, crdFile); err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: o.rootNamespace()},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("localcluster: creating namespace %s: %w", o.rootNamespace(), err)
	}

	if !o.Double {
		return c.startIstioInjector(ctx)
	}
	handler, err := NewInjectorHandler(c.RESTConfig, *o)
	if err != nil {
		return err
	}
	// The PeerAuthentication kind must be served before the first pod is
	// admitted (the double lists them at every admission).
	if err := waitFor(ctx, "PeerAuthentications listable", func(ctx context.Context) error {
		_, err := handler.Modes(ctx, o.rootNamespace(), nil)
		return err
	}); err != nil {
		return err
	}

	cert, err := c.pki.servingTLS("injector-double")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.Webhook)))
	if err != nil && errors.Is(err, syscall.EADDRINUSE) && c.auto[&c.Ports.Webhook] {
		l, err = net.Listen("tcp", "127.0.0.1:0") // taken since it was picked
	}
	if err != nil {
		return &PortInUseError{Port: c.Ports.Webhook, Use: "injector double webhook", Err: err}
	}
	c.Ports.Webhook = l.Addr().(*net.TCPAddr).Port
	logf, err := os.OpenFile(filepath.Join(c.Dir, "logs", InjectorDouble+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = l.Close()
		return err
	}
	srv := NewInjectorServer(handler, cert, logf)
	srv.RegisterOnShutdown(func() { _ = logf.Close() })
	c.mu.Lock()
	c.injector = srv
	c.mu.Unlock()
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_, _ = fmt.Fprintf(logf, "serve: %v\n", err)
		}
	}()
	c.InjectorURL = fmt.Sprintf("https://127.0.0.1:%d%s", c.Ports.Webhook, meshdouble.WebhookPath)

	if err := registerInjector(ctx, cs, c.InjectorURL, c.pki.caPEM); err != nil {
		return err
	}
	c.opts.Logf("mesh double serving %s (rewriteAppHTTPProbe=%v)", c.InjectorURL, o.RewriteAppHTTPProbe)
	return nil
}

// InjectorWebhookConfiguration is the MutatingWebhookConfiguration that
// makes the API server call the double for every pod CREATE outside
// kube-system.
func InjectorWebhookConfiguration(url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	scope := admissionregistrationv1.NamespacedScope
	timeout := int32(5)
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: InjectorWebhookName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "sidecar-injector.meshdouble.proberedirect.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope,
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"},
			}}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			ReinvocationPolicy:      &never,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func registerInjector(ctx context.Context, cs kubernetes.Interface, url string, caBundle []byte) error {
	if err := ApplyWebhookConfiguration(ctx, cs, InjectorWebhookConfiguration(url, caBundle)); err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	return nil
}

// ApplyWebhookConfiguration creates want, or replaces the MutatingWebhookConfiguration of that
// name with it (the double's and Istio's injector both register this way). Errors name it.
func ApplyWebhookConfiguration(ctx context.Context, cs kubernetes.Interface, want *admissionregistrationv1.MutatingWebhookConfiguration) error {
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		want.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering %s: %w", want.Name, err)
	}
	return nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs creates every CustomResourceDefinition in file (one that
// already exists is kept) and waits until they are Established, or until ctx
// ends.
func InstallCRDs(ctx context.Context, cfg *rest.Config, file string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("localcluster: CRDs: %w", err)
	}
	defer func() { _ = f.Close() }()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 64*1024)
	var names []string
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("localcluster: decoding %s: %w", file, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if obj == nil || u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if _, err := dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("localcluster: creating CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	if len(names) == 0 {
		return fmt.Errorf("localcluster: no CustomResourceDefinition in %s", file)
	}
	return waitFor(ctx, "CRDs of "+filepath.Base(file)+" established", func(ctx context.Context) error {
		for _, n := range names {
			u, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return fmt.Errorf("CRD %s not established", n)
			}
		}
		return nil
	})
}

// waitFor polls check every 200ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localcluster: waiting for %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startIstioInjector runs bin/istio-injector: Istio's own injection webhook
// with the istio-discovery chart's configuration, which registers the
// chart's MutatingWebhookConfiguration (pointed at itself) and answers
// /readyz once it has.
func (c *Cluster) startIstioInjector(ctx context.Context) error {
	o := c.opts.Injector
	certPEM, keyPEM, err := c.pki.servingPEM(IstioInjector, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return err
	}
	certFile := filepath.Join(c.Dir, "pki", IstioInjector+".crt")
	keyFile := filepath.Join(c.Dir, "pki", IstioInjector+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	comp := component{
		name: IstioInjector, bin: IstioInjector,
		ports: []portRef{{&c.Ports.Webhook, "istio-injector webhook"}},
		args: func() []string {
			return []string{
				"--kubeconfig=" + c.Kubeconfig,
				"--listen=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.Webhook)),
				"--tls-cert-file=" + certFile,
				"--tls-private-key-file=" + keyFile,
				"--client-ca-file=" + c.pki.caFile,
				"--rewrite-app-http-probe=" + strconv.FormatBool(o.RewriteAppHTTPProbe),
				"--root-namespace=" + o.rootNamespace(),
			}
		},
		ready: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				fmt.Sprintf("https://127.0.0.1:%d/readyz", c.Ports.Webhook), nil)
			if err != nil {
				return err
			}
			resp, err := httpc.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("istio-injector /readyz: %s", resp.Status)
			}
			return nil
		},
	}
	if err := c.launch(ctx, comp); err != nil {
		return err
	}
	c.InjectorURL = fmt.Sprintf("https://127.0.0.1:%d/inject", c.Ports.Webhook)
	c.opts.Logf("Istio's injector serving %s (rewriteAppHTTPProbe=%v)", c.InjectorURL, o.RewriteAppHTTPProbe)
	return nil
}

// StartMesh installs Istio's CRDs and starts the sidecar injector of
// Options.Injector on a cluster started with Injector.Deferred: a mesh
// installed after whatever already runs on the cluster.
func (c *Cluster) StartMesh(ctx context.Context) error {
	if c.opts.Injector == nil || !c.opts.Injector.Deferred {
		return errors.New("localcluster: StartMesh needs Options.Injector with Deferred")
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	return c.startInjector(ctx, cs, c.istioCRDs)
}

// RemoveMeshCRDs deletes every CustomResourceDefinition of Istio's CRD file
// (and with them every Istio object) and waits until the API server no
// longer serves them. The injector keeps running.
func (c *Cluster) RemoveMeshCRDs(ctx context.Context) error {
	return c.removeCRDFiles(ctx, "Istio", []string{c.istioCRDs})
}

// removeCRDFiles deletes every CustomResourceDefinition of files (what names
// the mesh in errors) and waits until the API server no longer serves them.
func (c *Cluster) removeCRDFiles(ctx context.Context, what string, files []string) error {
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		n, err := crdNames(f)
		if err != nil {
			return err
		}
		names = append(names, n...)
	}
	// A CRD deleted while its storage is still initialising can stay Terminating for minutes
	// ("could not list instances: storage is (re)initializing"): wait until every kind lists.
	if err := waitFor(ctx, what+"'s kinds listable", func(ctx context.Context) error {
		for _, n := range names {
			u, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
			versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
			for _, v := range versions {
				version, _ := v.(map[string]any)
				if served, _ := version["served"].(bool); !served {
					continue
				}
				name, _ := version["name"].(string)
				gvr := schema.GroupVersionResource{Group: group, Version: name, Resource: plural}
				if _, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
					return fmt.Errorf("listing %s: %w", gvr, err)
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, n := range names {
		if err := dyn.Resource(crdGVR).Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("localcluster: deleting CRD %s: %w", n, err)
		}
	}
	return waitFor(ctx, what+" CRDs gone", func(ctx context.Context) error {
		for _, n := range names {
			if _, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("CRD %s still there (%v)", n, err)
			}
		}
		return nil
	})
}

// crdNames lists the names of the CustomResourceDefinitions in file.
func crdNames(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("localcluster: Istio CRDs: %w", err)
	}
	defer func() { _ = f.Close() }()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 64*1024)
	var names []string
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return names, nil
			}
			return nil, fmt.Errorf("localcluster: decoding %s: %w", file, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if obj != nil && u.GetKind() == "CustomResourceDefinition" {
			names = append(names, u.GetName())
		}
	}
}
