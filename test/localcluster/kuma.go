package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/proberedirect/probe-redirect-operator/test/meshdouble"
)

// Kuma on the local control plane: Kuma's Go module is not served, so the
// cluster runs test/meshdouble's double of Kuma's v2.14.3 injector
// (meshdouble.KumaWebhook, proven against Kuma's golden files) behind the
// verdict layer (meshdouble.VerdictWebhook with meshdouble.KumaModes), in
// this process, registered like kuma-cp's chart registers its injector.

// KumaWebhookName is the MutatingWebhookConfiguration of the Kuma double. It
// sorts after Istio's configurations; the verdict layers do not depend on
// that order (meshdouble.VerdictSourceAnnotation).
const KumaWebhookName = "kuma-admission-mutating-webhook-configuration-double"

// KumaInjectorDouble is the log name of the in-process Kuma webhook.
const KumaInjectorDouble = "kuma-injector-double"

// KumaCRDFiles are Kuma's CRDs in shared/fixtures/kuma-crds.
var KumaCRDFiles = []string{"kuma.io_meshes.yaml", "kuma.io_meshtlses.yaml", "kuma.io_meshhealthchecks.yaml"}

// DefaultKumaCRDsDir is <repo>/../shared/fixtures/kuma-crds, where the
// project's shared fixtures live (shared/fixtures/README.md: "Tests may read
// them from ../shared/fixtures/... relative to the project root").
func DefaultKumaCRDsDir(repoRoot string) string {
	return filepath.Join(repoRoot, "..", "shared", "fixtures", "kuma-crds")
}

func (o *InjectorOptions) kuma() bool { return o != nil && (o.Kuma || o.KumaOnly) }

func (o *InjectorOptions) kumaCRDFiles(repoRoot string) []string {
	dir := o.KumaCRDsDir
	if dir == "" {
		dir = DefaultKumaCRDsDir(repoRoot)
	}
	files := make([]string, len(KumaCRDFiles))
	for i, f := range KumaCRDFiles {
		files[i] = filepath.Join(dir, f)
	}
	return files
}

// NewKumaInjectorHandler returns the Kuma double wired to a cluster:
// namespace labels and Mesh existence are read from the API server at each
// admission and the verdicts resolve Kuma's mTLS mode with
// meshdouble.KumaModes (Mesh and MeshTLS, kuma-system as system namespace).
func NewKumaInjectorHandler(cfg *rest.Config, o meshdouble.KumaOptions) (*meshdouble.VerdictWebhook, *meshdouble.KumaWebhook, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	injector := &meshdouble.KumaWebhook{
		Options: o,
		NamespaceLabels: func(ctx context.Context, namespace string) (map[string]string, error) {
			ns, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return ns.Labels, nil
		},
		MeshExists: func(ctx context.Context, mesh string) (bool, error) {
			_, err := dyn.Resource(meshdouble.KumaMeshGVR).Get(ctx, mesh, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		},
	}
	return &meshdouble.VerdictWebhook{
		Injector: injector,
		Path:     meshdouble.KumaWebhookPath,
		Source:   "kuma",
		Modes:    meshdouble.KumaModes(dyn, meshdouble.DefaultKumaSystemNamespace),
	}, injector, nil
}

// startKuma installs Kuma's CRDs, serves the Kuma double and registers it.
func (c *Cluster) startKuma(ctx context.Context, cs kubernetes.Interface) error {
	o := c.opts.Injector
	if err := c.InstallKumaCRDs(ctx); err != nil {
		return err
	}
	kopts := meshdouble.DefaultKumaOptions()
	if o.KumaConfig != nil {
		kopts = *o.KumaConfig
	}
	handler, injector, err := NewKumaInjectorHandler(c.RESTConfig, kopts)
	if err != nil {
		return err
	}
	cert, err := c.pki.servingTLS(KumaInjectorDouble)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.KumaWebhook)))
	if err != nil && errors.Is(err, syscall.EADDRINUSE) && c.auto[&c.Ports.KumaWebhook] {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return &PortInUseError{Port: c.Ports.KumaWebhook, Use: "Kuma injector double webhook", Err: err}
	}
	c.Ports.KumaWebhook = l.Addr().(*net.TCPAddr).Port
	logf, err := os.OpenFile(filepath.Join(c.Dir, "logs", KumaInjectorDouble+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = l.Close()
		return err
	}
	srv := NewInjectorServer(handler, cert, logf)
	srv.RegisterOnShutdown(func() { _ = logf.Close() })
	c.mu.Lock()
	c.kumaServer, c.kumaInjector = srv, injector
	c.mu.Unlock()
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_, _ = fmt.Fprintf(logf, "serve: %v\n", err)
		}
	}()
	c.KumaInjectorURL = fmt.Sprintf("https://127.0.0.1:%d%s", c.Ports.KumaWebhook, meshdouble.KumaWebhookPath)
	if err := ApplyWebhookConfiguration(ctx, cs, KumaWebhookConfiguration(c.KumaInjectorURL, c.pki.caPEM)); err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	c.opts.Logf("Kuma injector double serving %s (probe proxy port %d, virtual probes %v)",
		c.KumaInjectorURL, kopts.ProbeProxyPort, kopts.VirtualProbesEnabled)
	return nil
}

// SetKumaOptions changes the Kuma double's injector configuration for pods
// admitted from now on (like restarting kuma-cp with a new config).
func (c *Cluster) SetKumaOptions(o meshdouble.KumaOptions) error {
	c.mu.Lock()
	inj := c.kumaInjector
	c.mu.Unlock()
	if inj == nil {
		return errors.New("localcluster: no Kuma double runs (InjectorOptions.Kuma or KumaOnly)")
	}
	inj.SetOptions(o)
	return nil
}

// InstallKumaCRDs creates Kuma's Mesh, MeshTLS and MeshHealthCheck CRDs and
// waits until they are Established (Start does it with InjectorOptions.Kuma).
func (c *Cluster) InstallKumaCRDs(ctx context.Context) error {
	for _, f := range c.opts.Injector.kumaCRDFiles(c.opts.RepoRoot) {
		if err := InstallCRDs(ctx, c.RESTConfig, f); err != nil {
			return err
		}
	}
	return nil
}

// RemoveKumaCRDs deletes Kuma's CRDs (and with them every Mesh and policy)
// and waits until they are gone; the Kuma double keeps running.
func (c *Cluster) RemoveKumaCRDs(ctx context.Context) error {
	return c.removeCRDFiles(ctx, "Kuma", c.opts.Injector.kumaCRDFiles(c.opts.RepoRoot))
}

// KumaWebhookConfiguration mirrors kuma-cp's chart
// (deployments/charts/kuma/templates/cp-webhooks-and-secrets.yaml at
// v2.14.3): namespace-kuma-injector (namespaces labelled
// kuma.io/sidecar-injection enabled or true) and pods-kuma-injector (pods
// labelled kuma.io/sidecar-injection=enabled in namespaces that have the
// label at all), outside kube-system and kuma-system, pod CREATE only.
func KumaWebhookConfiguration(url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	timeout := int32(5)
	notSystem := metav1.LabelSelectorRequirement{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
		Values: []string{"kube-system", meshdouble.DefaultKumaSystemNamespace},
	}
	hook := func(name string, ns metav1.LabelSelectorRequirement, object *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:         name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{ns, notSystem}},
			ObjectSelector:          object,
			FailurePolicy:           &fail,
			SideEffects:             &none,
			ReinvocationPolicy:      &never,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: KumaWebhookName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("namespace-kuma-injector.meshdouble.kuma.io", metav1.LabelSelectorRequirement{
				Key: meshdouble.KumaSidecarInjectionLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled", "true"},
			}, nil),
			hook("pods-kuma-injector.meshdouble.kuma.io", metav1.LabelSelectorRequirement{
				Key: meshdouble.KumaSidecarInjectionLabel, Operator: metav1.LabelSelectorOpExists,
			}, &metav1.LabelSelector{MatchLabels: map[string]string{meshdouble.KumaSidecarInjectionLabel: "enabled"}}),
		},
	}
}
