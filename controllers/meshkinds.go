package controllers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// DefaultMeshKindsInterval is how often PeerAuthenticationKind asks the API server's discovery
// whether Istio's PeerAuthentication kind is served, in seconds of wall time.
const DefaultMeshKindsInterval = 5 * time.Second

// peerAuthenticationGroupVersion is the group/version whose discovery document says whether
// PeerAuthentication is served (istio.io/client-go security/v1).
var peerAuthenticationGroupVersion = securityv1.SchemeGroupVersion.String()

// PeerAuthenticationKind follows whether the cluster serves Istio's PeerAuthentication kind, so
// that a mesh installed (or removed) after the operator started is followed without a restart.
// Every Interval it reads the discovery document of security.istio.io/v1; when the kind appears it
// starts watching PeerAuthentications and wakes every policy, when it goes it stops the watch
// (removing the informer) and wakes every policy again. The zero value is not usable: build it
// with NewPeerAuthenticationKind.
type PeerAuthenticationKind struct {
	// Interval is the discovery poll period; 0 means DefaultMeshKindsInterval.
	Interval time.Duration

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

// NewPeerAuthenticationKind returns a follower that asks d and starts informers in c. It reads
// discovery once now, so Served is right before the manager starts; an error reading it (other
// than "not found") counts as not served and is returned for the caller to log.
func NewPeerAuthenticationKind(d discovery.DiscoveryInterface, c cache.Cache) (*PeerAuthenticationKind, error) {
	k := &PeerAuthenticationKind{discovery: d, cache: c, wake: make(chan event.GenericEvent, 1024)}
	served, err := k.discover()
	k.served.Store(served)
	return k, err
}

// Served reports whether PeerAuthentication was served at the last poll.
func (k *PeerAuthenticationKind) Served() bool { return k != nil && k.served.Load() }

// discover reads the group version's discovery document.
func (k *PeerAuthenticationKind) discover() (bool, error) {
	list, err := k.discovery.ServerResourcesForGroupVersion(peerAuthenticationGroupVersion)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Kind == "PeerAuthentication" {
			return true, nil
		}
	}
	return false, nil
}

// register wires the follower to the controller: the PeerAuthentication watch uses h, and the
// policies to wake on a change are listed with reader. It returns the source that delivers
// those wake-ups.
func (k *PeerAuthenticationKind) register(h handler.EventHandler, reader client.Reader) source.Source {
	k.handler, k.reader = h, reader
	return source.Channel(k.wake, &handler.EnqueueRequestForObject{})
}

// started is called once the controller exists; it starts the watch if the kind is served.
func (k *PeerAuthenticationKind) started(c controller.Controller) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.controller = c
	if k.served.Load() {
		return k.startWatchLocked()
	}
	return nil
}

func (k *PeerAuthenticationKind) startWatchLocked() error {
	if k.watching || k.controller == nil {
		return nil
	}
	if err := k.controller.Watch(source.Kind[client.Object](k.cache, &securityv1.PeerAuthentication{}, k.handler)); err != nil {
		return err
	}
	k.watching = true
	return nil
}

// Start implements manager.Runnable: it polls discovery until ctx ends.
func (k *PeerAuthenticationKind) Start(ctx context.Context) error {
	interval := k.Interval
	if interval <= 0 {
		interval = DefaultMeshKindsInterval
	}
	log := logf.FromContext(ctx).WithName("mesh-kinds")
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		served, err := k.discover()
		if err != nil {
			log.Error(err, "Failed to read discovery; keeping the last answer", "groupVersion", peerAuthenticationGroupVersion)
			return
		}
		if served == k.served.Load() {
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if served {
			if err := k.startWatchLocked(); err != nil {
				log.Error(err, "Failed to start watching PeerAuthentications; retrying")
				return
			}
			log.Info("PeerAuthentication is now served; following PeerAuthentications")
		} else {
			// Stop answering "served" before the informer goes, so that no new reconcile lists
			// PeerAuthentications (which would start the informer again).
			k.served.Store(false)
			if k.watching {
				if err := k.cache.RemoveInformer(ctx, &securityv1.PeerAuthentication{}); err != nil {
					log.Error(err, "Failed to stop the PeerAuthentication informer")
				}
				k.watching = false
			}
			log.Info("PeerAuthentication is no longer served; every workload counts as PERMISSIVE")
		}
		k.served.Store(served)
		k.wakeAll(ctx)
	}, interval)
	return nil
}

// wakeAll enqueues every policy.
func (k *PeerAuthenticationKind) wakeAll(ctx context.Context) {
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
func (k *PeerAuthenticationKind) NeedLeaderElection() bool { return true }
