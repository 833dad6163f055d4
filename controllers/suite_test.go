package controllers_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/proberedirect/probe-redirect-operator/controllers"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

const rootNamespace = "istio-system"

var (
	// k8sClient reads straight from the API server, never from a cache.
	k8sClient  client.WithWatch
	restConfig *rest.Config
)

// TestMain starts a real etcd and kube-apiserver with the CRDs, and a manager running the real
// reconciler with the same cache restrictions as main.go. No kube-controller-manager runs here:
// tests that need a rollout to finish set the workload status the way its controller would.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapLevel())))
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	restConfig, err = env.Start()
	if err != nil {
		_ = env.Stop() // a failed start may have left etcd or kube-apiserver running
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	k8sClient, err = client.NewWithWatch(restConfig, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rootNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 testenv.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(controllers.CacheScope{RootNamespace: rootNamespace, KumaSystemNamespace: kumamesh.DefaultSystemNamespace}),
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	disco, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	peerAuthentications, err := controllers.NewPeerAuthenticationKind(disco, mgr.GetCache())
	if err != nil || !peerAuthentications.Served() {
		fmt.Fprintln(os.Stderr, "PeerAuthentication CRD is not served by the test API server", err)
		return 1
	}
	kumaMeshes, err := controllers.NewKumaMeshKind(disco, mgr.GetCache())
	if err != nil || !kumaMeshes.Served() {
		fmt.Fprintln(os.Stderr, "Kuma's Mesh CRD is not served by the test API server", err)
		return 1
	}
	kumaMeshTLSes, err := controllers.NewKumaMeshTLSKind(disco, mgr.GetCache())
	if err != nil || !kumaMeshTLSes.Served() {
		fmt.Fprintln(os.Stderr, "Kuma's MeshTLS CRD is not served by the test API server", err)
		return 1
	}
	reconciler := &controllers.ProbeRedirectPolicyReconciler{
		Client:              mgr.GetClient(),
		APIReader:           mgr.GetAPIReader(),
		Recorder:            mgr.GetEventRecorder("probe-redirect-operator"),
		Clock:               clock.RealClock{},
		Config:              plan.Config{UnhealthyWindow: 10 * time.Minute},
		IstioStatusPort:     15020,
		RootNamespace:       rootNamespace,
		EventCoalesce:       coalesce,
		PeerAuthentications: peerAuthentications,
		KumaMeshes:          kumaMeshes,
		KumaMeshTLSes:       kumaMeshTLSes,
		KumaSystemNamespace: kumamesh.DefaultSystemNamespace,
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return m.Run()
}

// coalesce is the Unhealthy/pod event coalescing interval, as in production.
const coalesce = 2 * time.Second

// zapLevel keeps test output to errors unless TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE") != "" {
		return zapcore.Level(-2)
	}
	return zapcore.ErrorLevel
}
