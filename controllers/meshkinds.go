package controllers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// DefaultMeshKindsInterval is how often a MeshKind asks the API server's discovery whether its
// kind is served, in seconds of wall time.
const DefaultMeshKindsInterval = 5 * time.Second

// MeshKind follows whether the cluster serves one kind of a mesh's policy (Istio's
// PeerAuthentication, Kuma's Mesh and MeshTLS), so that a mesh installed (or removed) after the
// operator started is followed without a restart. Every Interval it reads the discovery document of
// the kind's group version; when the kind appears it starts watching it and wakes every policy,
// when it goes it stops the watch (removing the informer) and wakes every policy again. The zero
// value is not usable: build it with NewPeerAuthenticationKind, NewKumaMeshKind or
// NewKumaMeshTLSKind.
type MeshKind struct {
	// Interval is the discovery poll period; 0 means DefaultMeshKindsInterval.
	Interval time.Duration

	groupVersion schema.GroupVersion
	kind         string
	newObject    func() client.Object
	// without says, for the log, what the operator assumes while the kind is not served.
	without string

	discovery discovery.DiscoveryInterface
	cache     cache.Cache
	served    atomic.Bool

	mu         sync.Mutex
	controller controller.Controller
	handler    handler.EventHandler
	wake       chan event.GenericEvent
	reader     client.Reader
	watching   bool
}

// NewPeerAuthenticationKind returns a follower of Istio's PeerAuthentication
// (security.istio.io/v1) that asks d and starts informers in c. It reads discovery once now, so
// Served is right before the manager starts; an error reading it (other than "not found") counts
// as not served and is returned for the caller to log.
func NewPeerAuthenticationKind(d discovery.DiscoveryInterface, c cache.Cache) (*MeshKind, error) {
	return newMeshKind(d, c, securityv1.SchemeGroupVersion, "PeerAuthentication",
		func() client.Object { return &securityv1.PeerAuthentication{} }, "every Istio workload counts as PERMISSIVE")
}

// KumaGroupVersion is the group version of Kuma's Mesh and MeshTLS (kumahq/kuma v2.14.3,
// api/mesh/v1alpha1 and pkg/plugins/policies/meshtls/api/v1alpha1).
var KumaGroupVersion = schema.GroupVersion{Group: "kuma.io", Version: "v1alpha1"}

// NewKumaMeshKind returns a follower of Kuma's cluster-scoped Mesh, read as unstructured objects
// (Kuma publishes no Go module the operator can use). See NewPeerAuthenticationKind.
func NewKumaMeshKind(d discovery.DiscoveryInterface, c cache.Cache) (*MeshKind, error) {
	return newMeshKind(d, c, KumaGroupVersion, "Mesh", func() client.Object { return NewKumaObject("Mesh") },
		"every Kuma workload counts as DISABLE")
}

// NewKumaMeshTLSKind returns a follower of Kuma's MeshTLS policy, read as unstructured objects.
func NewKumaMeshTLSKind(d discovery.DiscoveryInterface, c cache.Cache) (*MeshKind, error) {
	return newMeshKind(d, c, KumaGroupVersion, "MeshTLS", func() client.Object { return NewKumaObject("MeshTLS") },
		"Kuma workloads follow their Mesh's mode alone")
}

// NewKumaObject returns an empty unstructured object of a Kuma kind, or of its list when kind ends
// in "List".
func NewKumaObject(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(KumaGroupVersion.WithKind(kind))
	return u
}

func newMeshKind(d discovery.DiscoveryInterface, c cache.Cache, gv schema.GroupVersion, kind string, newObject func() client.Object, without string) (*MeshKind, error) {
	k := &MeshKind{groupVersion: gv, kind: kind, newObject: newObject, without: without,
		discovery: d, cache: c, wake: make(chan event.GenericEvent, 1024)}
	served, err := k.discover()
	k.served.Store(served)
	return k, err
}

// Served reports whether the kind was served at the last poll.
func (k *MeshKind) Served() bool { return k != nil && k.served.Load() }

// GroupKind names the followed kind.
func (k *MeshKind) GroupKind() schema.GroupKind { return k.groupVersion.WithKind(k.kind).GroupKind() }

// discover reads the group version's discovery document.
func (k *MeshKind) discover() (bool, error) {
	return KindServed(k.discovery, k.groupVersion, k.kind)
}

// KindServed reports whether the API server's discovery lists kind in group version gv; a group
// version that is not served at all is (false, nil).
func KindServed(d discovery.DiscoveryInterface, gv schema.GroupVersion, kind string) (bool, error) {
	list, err := d.ServerResourcesForGroupVersion(gv.String())
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Kind == kind {
			return true, nil
		}
	}
	return false, nil
}

// register wires the follower to the controller: the kind's watch uses h, and the policies to
// wake on a change are listed with reader. It returns the source that delivers those wake-ups.
func (k *MeshKind) register(h handler.EventHandler, reader client.Reader) source.Source {
	k.handler, k.reader = h, reader
	return source.Channel(k.wake, &handler.EnqueueRequestForObject{})
}

// started is called once the controller exists; it starts the watch if the kind is served.
func (k *MeshKind) started(c controller.Controller) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.controller = c
	if k.served.Load() {
		return k.startWatchLocked()
	}
	return nil
}

func (k *MeshKind) startWatchLocked() error {
	if k.watching || k.controller == nil {
		return nil
	}
	if err := k.controller.Watch(source.Kind[client.Object](k.cache, k.newObject(), k.handler)); err != nil {
		return err
	}
	k.watching = true
	return nil
}

// Start implements manager.Runnable: it polls discovery until ctx ends.
func (k *MeshKind) Start(ctx context.Context) error {
	interval := k.Interval
	if interval <= 0 {
		interval = DefaultMeshKindsInterval
	}
	log := logf.FromContext(ctx).WithName("mesh-kinds").WithValues("kind", k.GroupKind().String())
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		served, err := k.discover()
		if err != nil {
			log.Error(err, "Failed to read discovery; keeping the last answer", "groupVersion", k.groupVersion.String())
			return
		}
		if served == k.served.Load() {
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if served {
			if err := k.startWatchLocked(); err != nil {
				log.Error(err, "Failed to start watching the kind; retrying")
				return
			}
			log.Info(k.kind + " is now served; following it")
		} else {
			// Stop answering "served" before the informer goes, so that no new reconcile lists
			// the kind (which would start the informer again).
			k.served.Store(false)
			if k.watching {
				if err := k.cache.RemoveInformer(ctx, k.newObject()); err != nil {
					log.Error(err, "Failed to stop the informer")
				}
				k.watching = false
			}
			log.Info(k.kind + " is no longer served; " + k.without)
		}
		k.served.Store(served)
		k.wakeAll(ctx)
	}, interval)
	return nil
}

// wakeAll enqueues every policy.
func (k *MeshKind) wakeAll(ctx context.Context) {
	policies := &v1alpha1.ProbeRedirectPolicyList{}
	if err := k.reader.List(ctx, policies); err != nil {
		logf.FromContext(ctx).Error(err, "Failed to list policies to wake")
		return
	}
	for i := range policies.Items {
		select {
		case k.wake <- event.GenericEvent{Object: &policies.Items[i]}:
		case <-ctx.Done():
			return
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader reconciles.
func (k *MeshKind) NeedLeaderElection() bool { return true }
