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

// Package controllers holds the ProbeRedirectPolicy reconciler: the only code that talks to the API
// server. It observes, asks internal/plan what to do, applies that, and writes the status once.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

const (
	// FieldOwner is the server-side-apply field manager of every change the operator makes to a
	// workload. Argo CD users name it in ignoreDifferences.managedFieldsManagers.
	FieldOwner = "probe-redirect-operator"
	// Finalizer holds a policy with onDelete: Restore until its annotations are removed.
	Finalizer = "mesh.proberedirect.io/restore"
	// ControllerName names the controller in logs, metrics and Events.
	ControllerName = "proberedirectpolicy"
)

// ProbeRedirectPolicyReconciler reconciles ProbeRedirectPolicy objects.
type ProbeRedirectPolicyReconciler struct {
	client.Client
	// APIReader reads the policy itself straight from the API server when the cache may lag
	// behind the reconciler's own last status write (readPolicy): its status holds the rollout
	// records.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Config holds the decision settings: the Unhealthy event window.
	Config plan.Config
	// IstioStatusPort is Istio's mesh-wide default status port, which rewritten probes target.
	IstioStatusPort int32
	// RootNamespace is Istio's root namespace, home of the mesh-wide PeerAuthentication.
	RootNamespace string
	// EventCoalesce delays reconciles caused by pod, Event and workload-status churn, and is the
	// least time between two status writes of one policy (see Reconcile), so that an Unhealthy
	// event storm or many rollouts at once cause at most one status write per policy per this
	// interval.
	EventCoalesce time.Duration
	// WatchNamespaces are the namespaces a namespace-scoped install manages (its cache holds
	// nothing else); empty means every namespace.
	WatchNamespaces []string
	// PeerAuthentications follows whether the cluster serves Istio's PeerAuthentication kind;
	// while it does not (or when nil), every workload counts as PERMISSIVE.
	PeerAuthentications *MeshKind
	// KumaMeshes and KumaMeshTLSes follow whether the cluster serves Kuma's Mesh and MeshTLS
	// kinds; nil when Kuma is not followed at all.
	KumaMeshes, KumaMeshTLSes *MeshKind
	// KumaSystemNamespace is Kuma's system namespace, home of the mesh-wide MeshTLS policies.
	KumaSystemNamespace string
	// Scope is what the cache was made to hold (CacheOptions): with WatchNamespaces, the mesh-wide
	// policies outside them are read only when their kind was served at start.
	Scope CacheScope

	// seen holds, per policy (types.NamespacedName), the resourceVersion this reconciler last read
	// from the API server or wrote itself (readPolicy).
	seen sync.Map
	// written holds, per policy (types.NamespacedName), when this reconciler last wrote its status
	// (time.Time, from Clock).
	written sync.Map
}

// +kubebuilder:rbac:groups=mesh.proberedirect.io,resources=proberedirectpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=mesh.proberedirect.io,resources=proberedirectpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=mesh.proberedirect.io,resources=proberedirectpolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications,verbs=get;list;watch
// +kubebuilder:rbac:groups=kuma.io,resources=meshes;meshtlses,verbs=get;list;watch

// Reconcile observes one policy's namespace, decides, applies, and writes the status once, at
// the end, whatever happened before. A policy whose status was written less than EventCoalesce
// ago is left until that interval has passed: each reconcile may write, and during many rollouts
// the triggers (its own annotations, workloads' and pods' churn) come faster than that. What
// arrives meanwhile is seen then, all at once.
func (r *ProbeRedirectPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if wait := r.untilStatusWrite(req.NamespacedName); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	policy, err := r.readPolicy(ctx, req.NamespacedName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
			r.seen.Delete(req.NamespacedName)
			r.written.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// Whatever happens below, the policy's resourceVersion is then one this reconciler read from
	// the API server or wrote itself.
	defer func() { r.seen.Store(req.NamespacedName, policy.ResourceVersion) }()
	deleting := !policy.DeletionTimestamp.IsZero()
	if done, err := r.reconcileFinalizer(ctx, policy, deleting); done || err != nil {
		return ctrl.Result{}, err
	}

	outcome, err := r.decideAndApply(ctx, policy, deleting)
	statusErr := r.writeStatus(ctx, policy, outcome.Status)
	recordMetrics(policy, outcome, r.Clock.Now())
	for _, e := range outcome.Events {
		r.Recorder.Eventf(policy, relatedWorkload(policy.Namespace, e.Workload), e.Type, string(e.Reason), string(e.Reason), "%s", e.Message)
	}
	if err := errors.Join(err, statusErr); err != nil {
		return ctrl.Result{}, err
	}
	if deleting && outcome.RestoreDone {
		ctrl.LoggerFrom(ctx).Info("Restored workloads; removing finalizer")
		return ctrl.Result{}, r.patchFinalizer(ctx, policy, false)
	}
	return ctrl.Result{RequeueAfter: outcome.RequeueAfter}, nil
}

// untilStatusWrite returns how long the policy must still wait before its next reconcile: what
// is left of EventCoalesce since this reconciler last wrote its status, 0 when nothing is.
func (r *ProbeRedirectPolicyReconciler) untilStatusWrite(key types.NamespacedName) time.Duration {
	last, ok := r.written.Load(key)
	if !ok {
		return 0
	}
	return max(0, r.EventCoalesce-r.Clock.Since(last.(time.Time)))
}

// relatedWorkload returns the workload an Event is about, to name as its related object; nil
// for an Event about the policy as a whole or a kind outside plan.WorkloadKinds.
func relatedWorkload(ns string, ref *plan.Ref) runtime.Object {
	if ref == nil {
		return nil
	}
	kind := plan.KindOf(ref.Kind)
	if kind == nil {
		return nil
	}
	obj := kind.NewObject()
	obj.SetNamespace(ns)
	obj.SetName(ref.Name)
	return obj
}

// readPolicy returns the policy as the API server has it now. Its status holds the rollout
// records, and the cache may not have caught up with this reconciler's own last status write yet,
// so the cached copy is used only when it is the version this reconciler last read from the API
// server or wrote itself (seen); otherwise the policy is read from the API server.
func (r *ProbeRedirectPolicyReconciler) readPolicy(ctx context.Context, key types.NamespacedName) (*v1alpha1.ProbeRedirectPolicy, error) {
	if last, ok := r.seen.Load(key); ok {
		cached := &v1alpha1.ProbeRedirectPolicy{}
		if err := r.Get(ctx, key, cached); err == nil && cached.ResourceVersion == last.(string) {
			return cached, nil
		}
	}
	policy := &v1alpha1.ProbeRedirectPolicy{}
	if err := r.APIReader.Get(ctx, key, policy); err != nil {
		return nil, err
	}
	return policy, nil
}

// decideAndApply observes, decides, carries out the decision and returns the outcome to write;
// when observing fails, the outcome says so and the error is returned for a retry.
func (r *ProbeRedirectPolicyReconciler) decideAndApply(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, deleting bool) (plan.Outcome, error) {
	in, err := r.observe(ctx, policy)
	if err != nil {
		return plan.ObserveFailed(policy, r.Clock.Now(), err), err
	}
	decide := plan.Decide
	if deleting {
		decide = plan.DecideRestore
	}
	decision := decide(in)
	results, err := r.apply(ctx, policy.Namespace, decision)
	return plan.Complete(decision, results), err
}

// reconcileFinalizer keeps the finalizer exactly when onDelete is Restore. done is true when the
// reconcile has nothing more to do now (the finalizer patch triggers the next one).
func (r *ProbeRedirectPolicyReconciler) reconcileFinalizer(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, deleting bool) (bool, error) {
	has := controllerutil.ContainsFinalizer(policy, Finalizer)
	if deleting {
		return !has, nil
	}
	want := policy.Spec.OnDelete == v1alpha1.DeletionPolicyRestore
	if want == has {
		return false, nil
	}
	return true, r.patchFinalizer(ctx, policy, want)
}

func (r *ProbeRedirectPolicyReconciler) patchFinalizer(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, add bool) error {
	base := policy.DeepCopy()
	if add {
		controllerutil.AddFinalizer(policy, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(policy, Finalizer)
	}
	return client.IgnoreNotFound(r.Patch(ctx, policy, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}

// observe reads everything the decision needs from the cache.
func (r *ProbeRedirectPolicyReconciler) observe(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy) (plan.Input, error) {
	ns := policy.Namespace
	in := plan.Input{Policy: policy, Now: r.Clock.Now(), Config: r.Config}

	namespace := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: ns}, namespace); err != nil {
		return in, fmt.Errorf("reading namespace: %w", err)
	}

	policies := &v1alpha1.ProbeRedirectPolicyList{}
	if err := r.List(ctx, policies, client.InNamespace(ns)); err != nil {
		return in, fmt.Errorf("listing policies: %w", err)
	}
	for i := range policies.Items {
		in.Policies = append(in.Policies, &policies.Items[i])
	}

	workloads, err := r.listWorkloads(ctx, ns)
	if err != nil {
		return in, err
	}
	in.Workloads = workloads

	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ns)); err != nil {
		return in, fmt.Errorf("listing pods: %w", err)
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, &pods.Items[i])
	}

	// The cache holds only Unhealthy events (see main.go), so no selector is needed here.
	events := &corev1.EventList{}
	if err := r.List(ctx, events, client.InNamespace(ns)); err != nil {
		return in, fmt.Errorf("listing events: %w", err)
	}
	in.Events = events.Items

	istiods := &appsv1.DeploymentList{}
	if err := r.List(ctx, istiods, client.InNamespace(r.RootNamespace), client.MatchingLabels(istiomesh.IstiodLabelSelector)); err != nil {
		return in, fmt.Errorf("listing istiod Deployments in %s: %w", r.RootNamespace, err)
	}
	istio := &istiomesh.View{Namespace: ns, NamespaceLabels: namespace.Labels, StatusPort: r.IstioStatusPort,
		Istio: istiomesh.NamespaceVersion(in.Pods, istiods.Items, namespace.Labels)}

	peerAuthentications, err := r.listPeerAuthentications(ctx, ns)
	if err != nil {
		return in, err
	}
	istio.MTLS = istiomesh.NewResolver(r.RootNamespace, peerAuthentications)

	kumaModes, err := r.kumaModes(ctx, ns)
	if err != nil {
		return in, err
	}
	kuma := &kumamesh.View{Namespace: ns, NamespaceLabels: namespace.Labels, NamespaceAnnotations: namespace.Annotations,
		SystemNamespace: r.KumaSystemNamespace, Modes: kumaModes, MeshesKnown: r.KumaMeshes.Served()}
	in.Meshes = []mesh.Mesh{istio, kuma}
	return in, nil
}

// kumaModes reads Kuma's Meshes and the MeshTLS policies of Kuma's system namespace and of ns, as
// far as the cluster serves those kinds. An object Kuma itself would refuse is left out and logged.
func (r *ProbeRedirectPolicyReconciler) kumaModes(ctx context.Context, ns string) (*kumamesh.Resolver, error) {
	var meshes []kumamesh.Mesh
	var policies []kumamesh.MeshTLS
	log := ctrl.LoggerFrom(ctx)
	if r.KumaMeshes.Served() {
		list, err := r.listKuma(ctx, "MeshList")
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			m, err := kumamesh.MeshFromUnstructured(&list.Items[i])
			if err != nil {
				log.V(1).Info("Ignored a Kuma Mesh that cannot be read", "mesh", list.Items[i].GetName(), "error", err.Error())
				continue
			}
			meshes = append(meshes, m)
		}
	}
	if r.KumaMeshTLSes.Served() {
		for _, n := range uniqueStrings(r.KumaSystemNamespace, ns) {
			if !r.readable(n, r.Scope.KumaMeshTLSServed) {
				continue
			}
			list, err := r.listKuma(ctx, "MeshTLSList", client.InNamespace(n))
			if err != nil {
				return nil, err
			}
			for i := range list.Items {
				p, err := kumamesh.MeshTLSFromUnstructured(&list.Items[i])
				if err != nil {
					log.V(1).Info("Ignored a Kuma MeshTLS that cannot be read", "meshTLS", klog.KObj(&list.Items[i]), "error", err.Error())
					continue
				}
				policies = append(policies, p)
			}
		}
	}
	return kumamesh.NewResolver(meshes, policies, r.KumaSystemNamespace), nil
}

// listKuma lists a Kuma kind from the cache, bounded in time like listPeerAuthentications.
func (r *ProbeRedirectPolicyReconciler) listKuma(ctx context.Context, listKind string, opts ...client.ListOption) (*unstructured.UnstructuredList, error) {
	ctx, cancel := context.WithTimeout(ctx, peerAuthenticationListTimeout)
	defer cancel()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(KumaGroupVersion.WithKind(listKind))
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing Kuma %s: %w", strings.TrimSuffix(listKind, "List"), err)
	}
	return list, nil
}

// peerAuthenticationListTimeout bounds listing PeerAuthentications from the cache.
const peerAuthenticationListTimeout = 30 * time.Second

// listPeerAuthentications lists the PeerAuthentications of the root namespace and of ns; none
// when the cluster does not serve the kind.
func (r *ProbeRedirectPolicyReconciler) listPeerAuthentications(ctx context.Context, ns string) ([]*securityv1.PeerAuthentication, error) {
	if !r.PeerAuthentications.Served() {
		return nil, nil
	}
	// The kind may go between Served and List; a cache List then waits for an informer that
	// cannot sync. Bound the wait, so that the reconcile fails and retries instead of hanging.
	ctx, cancel := context.WithTimeout(ctx, peerAuthenticationListTimeout)
	defer cancel()
	var out []*securityv1.PeerAuthentication
	for _, n := range uniqueStrings(r.RootNamespace, ns) {
		if !r.readable(n, r.Scope.PeerAuthenticationServed) {
			continue
		}
		list := &securityv1.PeerAuthenticationList{}
		if err := r.List(ctx, list, client.InNamespace(n)); err != nil {
			return nil, fmt.Errorf("listing PeerAuthentications in %s: %w", n, err)
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// listWorkloads lists the namespace's objects of every kind in plan.WorkloadKinds.
func (r *ProbeRedirectPolicyReconciler) listWorkloads(ctx context.Context, ns string) ([]plan.Workload, error) {
	var out []plan.Workload
	for i := range plan.WorkloadKinds {
		kind := &plan.WorkloadKinds[i]
		list := kind.NewList()
		if err := r.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %ss: %w", kind.Kind, err)
		}
		for _, obj := range kind.Items(list) {
			out = append(out, plan.NewWorkload(kind, obj, managesRewriteAnnotation(obj, FieldOwner)))
		}
	}
	return out, nil
}

// apply carries out the decision: server-side apply of the rewrite annotation (or of nothing, to
// give it back on restore) under FieldOwner, without force, so a value someone else owns is never
// overwritten: the API server answers with a conflict instead.
func (r *ProbeRedirectPolicyReconciler) apply(ctx context.Context, ns string, d plan.Decision) (map[plan.Ref]plan.ApplyResult, error) {
	log := ctrl.LoggerFrom(ctx)
	results := map[plan.Ref]plan.ApplyResult{}
	var errs []error
	do := func(ref plan.Ref, annotate bool) {
		var annotation *mesh.Annotation
		if annotate {
			a, ok := d.AnnotationOf(ref)
			if !ok {
				results[ref] = plan.ApplyResult{Err: fmt.Errorf("no redirect annotation decided for %s", ref)}
				errs = append(errs, results[ref].Err)
				return
			}
			annotation = &a
		}
		generation, err := r.applyAnnotation(ctx, ns, ref, annotation)
		results[ref] = plan.ApplyResult{Generation: generation, Err: err}
		obj := klog.KRef(ns, ref.Name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
		case annotate:
			log.Info("Annotated workload", string(ref.Kind), obj, "generation", generation)
		default:
			log.Info("Removed annotation from workload", string(ref.Kind), obj, "generation", generation)
		}
	}
	for _, ref := range d.Annotate {
		do(ref, true)
	}
	for _, ref := range d.Restore {
		do(ref, false)
	}
	return results, errors.Join(errs...)
}

// applyAnnotation applies the rewrite annotation to the workload's pod template (annotate), or an
// empty configuration that gives the operator's annotation back, and returns the generation the
// API server answered with.
func (r *ProbeRedirectPolicyReconciler) applyAnnotation(ctx context.Context, ns string, ref plan.Ref, annotation *mesh.Annotation) (int64, error) {
	annotate := annotation != nil
	kind := plan.KindOf(ref.Kind)
	if kind == nil {
		return 0, fmt.Errorf("unknown workload kind %q", ref.Kind)
	}
	var template *corev1ac.PodTemplateSpecApplyConfiguration
	if annotate {
		template = corev1ac.PodTemplateSpec().WithAnnotations(map[string]string{annotation.Key: annotation.Value})
	}
	config, generation := kind.Apply(ref.Name, ns, template)
	err := r.Apply(ctx, config, client.FieldOwner(FieldOwner))
	if annotate && conflictsOnlyOnAnnotationMap(err) {
		// A manifest applied server-side with `annotations: {}` (Argo CD with ServerSideApply=true)
		// owns the empty map itself. Adding the operator's key overwrites nothing anyone wrote, so
		// it takes the map's ownership along; a conflict on any value still fails.
		ctrl.LoggerFrom(ctx).Info("Retrying the annotation with force: another manager owns only the empty annotations map",
			string(ref.Kind), klog.KRef(ns, ref.Name))
		err = r.Apply(ctx, config, client.FieldOwner(FieldOwner), client.ForceOwnership)
	}
	if err != nil {
		return 0, err
	}
	if g := generation(); g != nil {
		return *g, nil
	}
	return 0, nil
}

// conflictsOnlyOnAnnotationMap reports whether err is a server-side-apply conflict about the pod
// template's annotations map as a whole, and about nothing else.
func conflictsOnlyOnAnnotationMap(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsConflict(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	causes := status.Status().Details.Causes
	for _, c := range causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict || c.Field != ".spec.template.metadata.annotations" {
			return false
		}
	}
	return len(causes) > 0
}

// writeStatus writes the status, and only when it changed: idle means idle. It is a server-side
// apply under FieldOwner of the operator's part of the status (its own conditions, never those
// another controller set), so it needs no optimistic lock and a stale cache cannot make it fail.
func (r *ProbeRedirectPolicyReconciler) writeStatus(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, status v1alpha1.ProbeRedirectPolicyStatus) error {
	current := policy.Status.DeepCopy()
	current.Conditions = plan.OwnConditions(current.Conditions)
	if apiequality.Semantic.DeepEqual(*current, status) {
		return nil
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&v1alpha1.ProbeRedirectPolicy{Status: status})
	if err != nil {
		return err
	}
	applied := &unstructured.Unstructured{Object: map[string]any{"status": content["status"]}}
	applied.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ProbeRedirectPolicy"))
	applied.SetName(policy.Name)
	applied.SetNamespace(policy.Namespace)
	applied.SetUID(policy.UID) // never recreate a policy deleted meanwhile
	err = r.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), client.FieldOwner(FieldOwner), client.ForceOwnership)
	if err != nil {
		return client.IgnoreNotFound(err)
	}
	policy.ResourceVersion = applied.GetResourceVersion() // a later finalizer patch must not conflict
	r.written.Store(types.NamespacedName{Namespace: policy.Namespace, Name: policy.Name}, r.Clock.Now())
	return nil
}

// SetupWithManager registers the controller and its watches.
func (r *ProbeRedirectPolicyReconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		WithOptions(options).
		For(&v1alpha1.ProbeRedirectPolicy{}, builder.WithPredicates(specOrLifecycleChanged)).
		// Another policy appearing, going or changing its selector may change which policy
		// manages a workload, so it wakes every policy of its namespace.
		Watches(&v1alpha1.ProbeRedirectPolicy{}, r.enqueueNamespace(0), builder.WithPredicates(specOrLifecycleChanged)).
		Watches(&corev1.Namespace{}, r.enqueuePoliciesInNamespace()).
		Watches(&corev1.Pod{}, r.enqueueNamespace(r.EventCoalesce)).
		Watches(&corev1.Event{}, r.enqueueNamespace(r.EventCoalesce), unhealthyEvents())
	for _, kind := range plan.WorkloadKinds {
		b = b.Watches(kind.NewObject(), r.enqueueWorkload(r.EventCoalesce))
	}
	// A mesh's policy kinds are watched from the moment they are served, which may be after the
	// start: each follower adds its watch then, and wakes every policy when its kind comes or goes.
	var kinds []*MeshKind
	follow := func(k *MeshKind, h handler.EventHandler) {
		if k != nil {
			b = b.WatchesRawSource(k.register(h, mgr.GetClient()))
			kinds = append(kinds, k)
		}
	}
	follow(r.PeerAuthentications, r.enqueuePeerAuthentication())
	follow(r.KumaMeshes, r.enqueueAll())
	follow(r.KumaMeshTLSes, r.enqueueKumaPolicy())
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		if err := k.started(c); err != nil {
			return err
		}
		if err := mgr.Add(k); err != nil {
			return err
		}
	}
	return nil
}
