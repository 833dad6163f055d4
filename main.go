/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command manager runs the probe-redirect-operator: it keeps kubelet probes truthful inside an
// Istio service mesh by annotating the workloads ProbeRedirectPolicies select.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/controllers"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/metricsauth"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	utilruntime.Must(securityv1.AddToScheme(scheme))
}

// options are the manager's command-line flags.
type options struct {
	metricsAddr, probeAddr, pprofAddr, rootNamespace, kumaSystemNamespace, leaderElectionNamespace, watchNamespaces string
	secureMetrics, enableHTTP2, leaderElect                                                                         bool
	statusPort, concurrency                                                                                         int
	unhealthyWindow, eventCoalesce                                                                                  time.Duration
	zap                                                                                                             zap.Options
}

// parseFlags reads the command line.
func parseFlags() options {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 turns it off.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness endpoints bind to.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address Go's profiling endpoints (/debug/pprof) bind to, e.g. 127.0.0.1:8082; empty turns them off. Unauthenticated: bind it to loopback.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica acts at a time.")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease; defaults to the pod's own namespace when run in a cluster.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS behind authentication and authorization.")
	flag.BoolVar(&o.enableHTTP2, "enable-http2", false, "Allow HTTP/2 on the metrics server; off because of the HTTP/2 Stream Cancellation and Rapid Reset CVEs.")
	flag.StringVar(&o.watchNamespaces, "watch-namespaces", os.Getenv("WATCH_NAMESPACES"),
		"Comma-separated namespaces whose policies and workloads the operator manages; empty means all. "+
			"Defaults to $WATCH_NAMESPACES, which the manifests fill from OLM's olm.targetNamespaces annotation.")
	flag.StringVar(&o.rootNamespace, "root-namespace", "istio-system", "Istio's root namespace, home of the mesh-wide PeerAuthentication.")
	flag.StringVar(&o.kumaSystemNamespace, "kuma-system-namespace", kumamesh.DefaultSystemNamespace, "Kuma's system namespace, home of the mesh-wide MeshTLS policies.")
	flag.IntVar(&o.statusPort, "status-port", int(istiomesh.DefaultStatusPort), "The mesh agent's default status port, which rewritten probes target.")
	flag.IntVar(&o.concurrency, "concurrency", 2, "How many policies are reconciled at once.")
	flag.DurationVar(&o.unhealthyWindow, "unhealthy-window", 10*time.Minute, "How long a kubelet Unhealthy event keeps its pod in a policy's status.")
	flag.DurationVar(&o.eventCoalesce, "event-coalesce", 2*time.Second, "Least time between two status writes of one policy; reconciles caused by pod, Event and workload-status churn wait this long too. An event storm or many rollouts cause at most one status write per policy per interval.")
	o.zap.BindFlags(flag.CommandLine)
	flag.Parse()
	return o
}

// metricsOptions serves metrics over HTTPS behind authentication and authorization unless told
// otherwise, and without HTTP/2 unless asked.
func metricsOptions(o options) metricsserver.Options {
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	m := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		m.FilterProvider = metricsauth.FilterProvider
	}
	return m
}

// defaultGCPercent is the garbage collector's target when the environment sets no GOGC: a
// collection when the heap has grown by a quarter of what was live after the last one, where
// Go's default (GOGC=100) waits until it has doubled. The operator's heap is mostly its cache,
// long-lived, so collecting more often keeps its resident memory near its live objects, for
// more CPU per allocated byte (make bench reports the operator's CPU and collections while it
// converges). Prometheus sets its own default (75) the same way. GOGC in the environment wins;
// GOMEMLIMIT works alongside either, as usual.
const defaultGCPercent = 25

func main() {
	o := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	setupLog := ctrl.Log.WithName("setup")
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := run(o); err != nil {
		setupLog.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}

// run builds the manager and the controller, and runs them until a signal arrives.
func run(o options) error {
	watchNamespaces := controllers.ParseWatchNamespaces(o.watchNamespaces)
	setupLog := ctrl.Log.WithName("setup")
	config := ctrl.GetConfigOrDie()
	scope, err := cacheScope(config, watchNamespaces, o)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(config, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOptions(o),
		HealthProbeBindAddress:        o.probeAddr,
		PprofBindAddress:              o.pprofAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "probe-redirect-operator.proberedirect.io",
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(scope),
		Client:                        client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	disco, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the discovery client: %w", err)
	}
	peerAuthentications, err := controllers.NewPeerAuthenticationKind(disco, mgr.GetCache())
	if err != nil {
		setupLog.Error(err, "Failed to read discovery; PeerAuthentication counts as not served until it can be read")
	}
	if !peerAuthentications.Served() {
		setupLog.Info("PeerAuthentication is not served by this cluster yet; every workload counts as PERMISSIVE until it is",
			"group", schema.GroupKind{Group: securityv1.GroupName, Kind: "PeerAuthentication"}.String())
	}
	kumaMeshes, err := controllers.NewKumaMeshKind(disco, mgr.GetCache())
	if err != nil {
		setupLog.Error(err, "Failed to read discovery; Kuma's Mesh counts as not served until it can be read")
	}
	kumaMeshTLSes, err := controllers.NewKumaMeshTLSKind(disco, mgr.GetCache())
	if err != nil {
		setupLog.Error(err, "Failed to read discovery; Kuma's MeshTLS counts as not served until it can be read")
	}
	if !kumaMeshes.Served() {
		setupLog.Info("Kuma's Mesh is not served by this cluster yet; every Kuma workload counts as without mTLS until it is",
			"group", kumaMeshes.GroupKind().String())
	}
	reconciler := &controllers.ProbeRedirectPolicyReconciler{
		Client:              mgr.GetClient(),
		APIReader:           mgr.GetAPIReader(),
		Recorder:            mgr.GetEventRecorder("probe-redirect-operator"),
		Clock:               clock.RealClock{},
		Config:              plan.Config{UnhealthyWindow: o.unhealthyWindow},
		IstioStatusPort:     int32(o.statusPort),
		RootNamespace:       o.rootNamespace,
		EventCoalesce:       o.eventCoalesce,
		PeerAuthentications: peerAuthentications,
		KumaMeshes:          kumaMeshes,
		KumaMeshTLSes:       kumaMeshTLSes,
		KumaSystemNamespace: o.kumaSystemNamespace,
		WatchNamespaces:     watchNamespaces,
		Scope:               scope,
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: o.concurrency, RecoverPanic: ptrTo(true)}); err != nil {
		return fmt.Errorf("setting up controller %s: %w", controllers.ControllerName, err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the ready check: %w", err)
	}
	setupLog.Info("Starting manager")
	return mgr.Start(ctrl.SetupSignalHandler())
}

// cacheScope is what the cache holds. A namespace-scoped install reads the mesh-wide policies
// outside its namespaces only for the kinds served now (CacheScope); discovery errors count as
// not served.
func cacheScope(config *rest.Config, watchNamespaces []string, o options) (controllers.CacheScope, error) {
	scope := controllers.CacheScope{WatchNamespaces: watchNamespaces, RootNamespace: o.rootNamespace, KumaSystemNamespace: o.kumaSystemNamespace}
	if len(watchNamespaces) == 0 {
		return scope, nil
	}
	disco, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		return scope, fmt.Errorf("creating the discovery client: %w", err)
	}
	scope.PeerAuthenticationServed, _ = controllers.KindServed(disco, securityv1.SchemeGroupVersion, "PeerAuthentication")
	scope.KumaMeshTLSServed, _ = controllers.KindServed(disco, controllers.KumaGroupVersion, "MeshTLS")
	return scope, nil
}

func ptrTo[T any](v T) *T { return &v }
