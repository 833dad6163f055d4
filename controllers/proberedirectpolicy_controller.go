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
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/mtls"
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
	// APIReader reads the policy itself straight from the API server: its status holds the
	// rollout records, and the cache can lag behind the reconciler's own last status write.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Plan holds the mesh status port and the Unhealthy event window.
	Plan plan.Config
	// RootNamespace is Istio's root namespace, home of the mesh-wide PeerAuthentication.
	RootNamespace string
	// EventCoalesce delays reconciles caused by pod and Event churn, so an Unhealthy event storm
	// causes at most one status write per policy per this interval.
	EventCoalesce time.Duration
	// PeerAuthenticationsServed is false when the cluster has no PeerAuthentication CRD; every
	// workload then counts as PERMISSIVE.
	PeerAuthenticationsServed bool
}

// +kubebuilder:rbac:groups=mesh.proberedirect.io,resources=proberedirectpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=mesh.proberedirect.io,resources=proberedirectpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=mesh.proberedirect.io,resources=proberedirectpolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications,verbs=get;list;watch

// Reconcile observes one policy's namespace, decides, applies, and writes the status once.
func (r *ProbeRedirectPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	policy := &v1alpha1.ProbeRedirectPolicy{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, policy); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	deleting := !policy.DeletionTimestamp.IsZero()
	if done, err := r.reconcileFinalizer(ctx, policy, deleting); done || err != nil {
		return ctrl.Result{}, err
	}

	in, err := r.observe(ctx, policy)
	if err != nil {
		r.recordObserveFailure(ctx, policy, err)
		return ctrl.Result{}, err
	}
	var decision *plan.Decision
	if deleting {
		decision = plan.DecideRestore(in)
	} else {
		decision = plan.Decide(in)
	}
	results, applyErr := r.apply(ctx, policy, decision, in.Workloads)
	outcome := decision.Complete(results)

	statusErr := r.writeStatus(ctx, policy, outcome.Status)
	recordMetrics(policy, outcome)
	for _, e := range outcome.Events {
		r.Recorder.Eventf(policy, nil, e.Type, e.Reason, e.Reason, "%s", e.Message)
	}
	if err := errors.Join(applyErr, statusErr); err != nil {
		return ctrl.Result{}, err
	}
	if deleting && outcome.RestoreDone {
		log.Info("Restored workloads; removing finalizer")
		return ctrl.Result{}, r.patchFinalizer(ctx, policy, false)
	}
	return ctrl.Result{RequeueAfter: outcome.RequeueAfter}, nil
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
	in := plan.Input{Policy: policy, Now: r.Clock.Now(), Config: r.Plan}

	namespace := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: ns}, namespace); err != nil {
		return in, fmt.Errorf("reading namespace: %w", err)
	}
	in.NamespaceLabels = namespace.Labels

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

	var peerAuthentications []*securityv1.PeerAuthentication
	if r.PeerAuthenticationsServed {
		for _, n := range uniqueStrings(r.RootNamespace, ns) {
			list := &securityv1.PeerAuthenticationList{}
			if err := r.List(ctx, list, client.InNamespace(n)); err != nil {
				return in, fmt.Errorf("listing PeerAuthentications in %s: %w", n, err)
			}
			peerAuthentications = append(peerAuthentications, list.Items...)
		}
	}
	in.MTLS = mtls.NewResolver(r.RootNamespace, peerAuthentications)
	return in, nil
}

func (r *ProbeRedirectPolicyReconciler) listWorkloads(ctx context.Context, ns string) ([]plan.Workload, error) {
	var out []plan.Workload
	deployments := &appsv1.DeploymentList{}
	if err := r.List(ctx, deployments, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Deployments: %w", err)
	}
	for i := range deployments.Items {
		d := &deployments.Items[i]
		out = append(out, plan.Workload{Deployment: d, ManagedByOperator: plan.ManagesRewriteAnnotation(d, FieldOwner)})
	}
	statefulSets := &appsv1.StatefulSetList{}
	if err := r.List(ctx, statefulSets, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing StatefulSets: %w", err)
	}
	for i := range statefulSets.Items {
		s := &statefulSets.Items[i]
		out = append(out, plan.Workload{StatefulSet: s, ManagedByOperator: plan.ManagesRewriteAnnotation(s, FieldOwner)})
	}
	daemonSets := &appsv1.DaemonSetList{}
	if err := r.List(ctx, daemonSets, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing DaemonSets: %w", err)
	}
	for i := range daemonSets.Items {
		d := &daemonSets.Items[i]
		out = append(out, plan.Workload{DaemonSet: d, ManagedByOperator: plan.ManagesRewriteAnnotation(d, FieldOwner)})
	}
	return out, nil
}

// apply carries out the decision: server-side apply of the rewrite annotation (or of nothing, to
// give it back on restore) under FieldOwner, without force, so a value someone else owns is never
// overwritten: the API server answers with a conflict instead.
func (r *ProbeRedirectPolicyReconciler) apply(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, d *plan.Decision, workloads []plan.Workload) (map[plan.Ref]plan.ApplyResult, error) {
	log := ctrl.LoggerFrom(ctx)
	results := map[plan.Ref]plan.ApplyResult{}
	var errs []error
	do := func(ref plan.Ref, annotate bool) {
		generation, err := r.applyAnnotation(ctx, policy.Namespace, ref, annotate)
		results[ref] = plan.ApplyResult{Generation: generation, Err: err}
		obj := klog.KRef(policy.Namespace, ref.Name)
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

func (r *ProbeRedirectPolicyReconciler) applyAnnotation(ctx context.Context, ns string, ref plan.Ref, annotate bool) (int64, error) {
	template := corev1ac.PodTemplateSpec()
	if annotate {
		template.WithAnnotations(map[string]string{mesh.RewriteAnnotation: "true"})
	}
	var config runtime.ApplyConfiguration
	var generation func() *int64
	switch ref.Kind {
	case v1alpha1.KindDeployment:
		ac := appsv1ac.Deployment(ref.Name, ns)
		if annotate {
			ac.WithSpec(appsv1ac.DeploymentSpec().WithTemplate(template))
		}
		config, generation = ac, func() *int64 { return ac.Generation }
	case v1alpha1.KindStatefulSet:
		ac := appsv1ac.StatefulSet(ref.Name, ns)
		if annotate {
			ac.WithSpec(appsv1ac.StatefulSetSpec().WithTemplate(template))
		}
		config, generation = ac, func() *int64 { return ac.Generation }
	default:
		ac := appsv1ac.DaemonSet(ref.Name, ns)
		if annotate {
			ac.WithSpec(appsv1ac.DaemonSetSpec().WithTemplate(template))
		}
		config, generation = ac, func() *int64 { return ac.Generation }
	}
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

// writeStatus writes the status once, and only when it changed: idle means idle. It is a
// server-side apply of the whole status under FieldOwner, so it needs no optimistic lock and a
// stale cache cannot make it fail.
func (r *ProbeRedirectPolicyReconciler) writeStatus(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, status v1alpha1.ProbeRedirectPolicyStatus) error {
	if apiequality.Semantic.DeepEqual(policy.Status, status) {
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
	policy.Status = status
	policy.ResourceVersion = applied.GetResourceVersion() // a later finalizer patch must not conflict
	return nil
}

// recordObserveFailure says in the status that the operator could not read what it needs.
func (r *ProbeRedirectPolicyReconciler) recordObserveFailure(ctx context.Context, policy *v1alpha1.ProbeRedirectPolicy, cause error) {
	status := policy.Status.DeepCopy()
	setCondition(status, policy.Generation, r.Clock.Now(), v1alpha1.ConditionReady, metav1.ConditionUnknown, v1alpha1.ReasonObserveFailed, cause.Error())
	if err := r.writeStatus(ctx, policy, *status); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to write status after an observe failure")
	}
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
		Watches(&appsv1.Deployment{}, r.enqueueNamespace(0)).
		Watches(&appsv1.StatefulSet{}, r.enqueueNamespace(0)).
		Watches(&appsv1.DaemonSet{}, r.enqueueNamespace(0)).
		Watches(&corev1.Namespace{}, r.enqueueNamed()).
		Watches(&corev1.Pod{}, r.enqueueNamespace(r.EventCoalesce)).
		Watches(&corev1.Event{}, r.enqueueNamespace(r.EventCoalesce), unhealthyEvents())
	if r.PeerAuthenticationsServed {
		b = b.Watches(&securityv1.PeerAuthentication{}, r.enqueuePeerAuthentication())
	}
	return b.Complete(r)
}
