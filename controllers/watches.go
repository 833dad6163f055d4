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

package controllers

import (
	"context"
	"slices"
	"strings"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
	"github.com/proberedirect/probe-redirect-operator/internal/unhealthy"
)

// CacheScope says what the manager's cache holds beyond the operator's own namespaces.
type CacheScope struct {
	// WatchNamespaces, when not empty, limits every namespaced kind to those namespaces (a
	// namespace-scoped install: OLM's OwnNamespace, SingleNamespace and MultiNamespace modes).
	WatchNamespaces []string
	// RootNamespace is Istio's root namespace: its Deployments (istiod's version) and, when
	// PeerAuthenticationServed, its PeerAuthentications (the mesh-wide one) are read too.
	RootNamespace string
	// KumaSystemNamespace is Kuma's system namespace: its MeshTLS policies (mesh-wide) are read
	// too when KumaMeshTLSServed.
	KumaSystemNamespace string
	// PeerAuthenticationServed and KumaMeshTLSServed say whether those kinds were served when the
	// manager was made. Only then can the cache be told to read them outside WatchNamespaces: it
	// needs their REST mapping at once, and a missing one would stop the manager from starting.
	PeerAuthenticationServed, KumaMeshTLSServed bool
}

// CacheOptions restricts what the manager caches: only kubelet Unhealthy events (never all
// Events); every kind without managedFields; Pods cut to what the decision reads (SlimPod), the
// kinds of plan.WorkloadKinds likewise (SlimWorkload, which keeps the operator's own
// managedFields entries: they tell whether the operator or a person wrote the redirect
// annotation), and Events too (SlimEvent); those three are then held as compact.Objects
// (Compacted), a fraction of a typed object's size, which the cache's Get and List decode. With
// WatchNamespaces, every namespaced kind is limited to them, except what s says is read outside
// them. Namespaces and Kuma's Meshes, being cluster-scoped,
// are cached in every namespace.
func CacheOptions(s CacheScope) cache.Options {
	o := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Event{}: {Field: fields.OneTermEqualSelector("reason", unhealthy.Reason), Transform: Compacted(SlimEvent)},
			&corev1.Pod{}:   {Transform: Compacted(SlimPod)},
		},
		// Every other kind (policies, Namespaces, the meshes' policies) is cached without
		// managedFields, which nothing reads there (a policy's status ones grow with its
		// workloads). A default rather than an entry per kind: an entry for the policy's own kind
		// would make the manager look up its REST mapping when it is made, and refuse to start
		// before the CRD is installed.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	with := func(extra string) map[string]cache.Config {
		if len(s.WatchNamespaces) == 0 {
			return nil // every namespace
		}
		out := map[string]cache.Config{extra: {}}
		for _, ns := range s.WatchNamespaces {
			out[ns] = cache.Config{}
		}
		return out
	}
	for i := range plan.WorkloadKinds {
		obj := plan.WorkloadKinds[i].NewObject()
		by := cache.ByObject{Transform: Compacted(SlimWorkload)}
		if _, ok := obj.(*appsv1.Deployment); ok {
			by.Namespaces = with(s.RootNamespace) // istiod's, for the Istio version
		}
		o.ByObject[obj] = by
	}
	if len(s.WatchNamespaces) == 0 {
		return o
	}
	o.DefaultNamespaces = map[string]cache.Config{}
	for _, ns := range s.WatchNamespaces {
		o.DefaultNamespaces[ns] = cache.Config{}
	}
	if s.PeerAuthenticationServed {
		o.ByObject[&securityv1.PeerAuthentication{}] = cache.ByObject{Namespaces: with(s.RootNamespace)}
	}
	if s.KumaMeshTLSServed {
		o.ByObject[NewKumaObject("MeshTLS")] = cache.ByObject{Namespaces: with(s.KumaSystemNamespace)}
	}
	return o
}

// readable reports whether the cache reads a mesh policy kind in namespace ns: every namespace
// of a cluster-wide install, the watched ones, and outside them only when the kind was served when
// the manager started (CacheScope). A mesh installed later into a namespace-scoped install has
// its mesh-wide policies read after the operator restarts.
func (r *ProbeRedirectPolicyReconciler) readable(ns string, servedAtStart bool) bool {
	return r.watches(ns) || servedAtStart
}

// watches reports whether the operator manages namespace ns (every namespace when
// WatchNamespaces is empty).
func (r *ProbeRedirectPolicyReconciler) watches(ns string) bool {
	return len(r.WatchNamespaces) == 0 || slices.Contains(r.WatchNamespaces, ns)
}

// ParseWatchNamespaces reads a comma-separated namespace list (the --watch-namespaces flag, or
// OLM's olm.targetNamespaces annotation): blanks are dropped, duplicates removed, order kept. An
// empty list means every namespace.
func ParseWatchNamespaces(list string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ns := range strings.Split(list, ",") {
		ns = strings.TrimSpace(ns)
		if ns != "" && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	return out
}

// enqueueWorkload maps a workload to every policy in its namespace: at once when it appears, goes
// or changes its spec (a new generation), and after delay when only its status moved. A rollout
// changes a Deployment's status many times a second, and each change would otherwise cost a
// reconcile and a status write; coalesced, a policy writes at most once per delay while its
// rollouts run, as pod churn already does.
func (r *ProbeRedirectPolicyReconciler) enqueueWorkload(delay time.Duration) handler.EventHandler {
	now, later := r.enqueueNamespace(0), r.enqueueNamespace(delay)
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			now.Create(ctx, e, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if e.ObjectOld.GetGeneration() == e.ObjectNew.GetGeneration() {
				later.Update(ctx, e, q)
				return
			}
			now.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			now.Delete(ctx, e, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			now.Generic(ctx, e, q)
		},
	}
}

// enqueueNamespace maps an object to every policy in its namespace, after delay when delay > 0 so
// that bursts of changes collapse into one reconcile.
func (r *ProbeRedirectPolicyReconciler) enqueueNamespace(delay time.Duration) handler.EventHandler {
	return r.enqueue(delay, func(obj client.Object) []client.ListOption {
		return []client.ListOption{client.InNamespace(obj.GetNamespace())}
	})
}

// enqueuePoliciesInNamespace maps a Namespace to the policies inside it.
func (r *ProbeRedirectPolicyReconciler) enqueuePoliciesInNamespace() handler.EventHandler {
	return r.enqueue(0, func(obj client.Object) []client.ListOption {
		return []client.ListOption{client.InNamespace(obj.GetName())}
	})
}

// enqueuePeerAuthentication maps a PeerAuthentication to the policies it can affect: those of its
// namespace, or all of them for the mesh-wide policy in the root namespace.
func (r *ProbeRedirectPolicyReconciler) enqueuePeerAuthentication() handler.EventHandler {
	return r.enqueue(0, func(obj client.Object) []client.ListOption {
		if obj.GetNamespace() == r.RootNamespace {
			return nil
		}
		return []client.ListOption{client.InNamespace(obj.GetNamespace())}
	})
}

// enqueueAll maps an object to every policy (a change to a cluster-scoped Kuma Mesh).
func (r *ProbeRedirectPolicyReconciler) enqueueAll() handler.EventHandler {
	return r.enqueue(0, func(client.Object) []client.ListOption { return nil })
}

// enqueueKumaPolicy maps a Kuma MeshTLS to the policies it can affect: those of its namespace, or
// all of them for a policy in Kuma's system namespace, which applies to the whole Mesh.
func (r *ProbeRedirectPolicyReconciler) enqueueKumaPolicy() handler.EventHandler {
	return r.enqueue(0, func(obj client.Object) []client.ListOption {
		if obj.GetNamespace() == r.KumaSystemNamespace {
			return nil
		}
		return []client.ListOption{client.InNamespace(obj.GetNamespace())}
	})
}

func (r *ProbeRedirectPolicyReconciler) enqueue(delay time.Duration, scope func(client.Object) []client.ListOption) handler.EventHandler {
	add := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		opts := scope(obj)
		lo := &client.ListOptions{}
		lo.ApplyOptions(opts)
		if lo.Namespace != "" && !r.watches(lo.Namespace) {
			return // a namespace-scoped install has no policies there (nor their cache)
		}
		policies := &v1alpha1.ProbeRedirectPolicyList{}
		if err := r.List(ctx, policies, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Failed to list policies for a watched object")
			return
		}
		for _, p := range policies.Items {
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}
			if delay > 0 {
				q.AddAfter(req, delay)
			} else {
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// specOrLifecycleChanged passes creations, deletions, spec changes and finalizer or deletion
// changes, but not the policy's own status writes, which would only wake it for nothing.
var specOrLifecycleChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldObj, newObj := e.ObjectOld, e.ObjectNew
		return oldObj.GetGeneration() != newObj.GetGeneration() ||
			!oldObj.GetDeletionTimestamp().Equal(newObj.GetDeletionTimestamp()) ||
			len(oldObj.GetFinalizers()) != len(newObj.GetFinalizers())
	},
}

// unhealthyEvents passes only kubelet Unhealthy events about pods.
func unhealthyEvents() builder.WatchesOption {
	return builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
		e, ok := typedObject(obj).(*corev1.Event)
		return ok && e.Reason == unhealthy.Reason && e.InvolvedObject.Kind == "Pod"
	}))
}

func uniqueStrings(values ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
