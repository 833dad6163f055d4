//go:build bench

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

var scheme = k8sruntime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	utilruntime.Must(securityv1.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
}

// benchLabel marks every Deployment the harness creates (and so the harness's informer).
const benchLabel = "bench.proberedirect.io/set"

// appLabel is what the policy selects.
const appLabel = "app"

// rewritePatch is the template change every scenario makes: the annotation the operator writes.
var rewritePatch = []byte(`{"spec":{"template":{"metadata":{"annotations":{"` + istiomesh.RewriteAnnotation + `":"true"}}}}}`)

// createSet creates namespace ns in the mesh (istio-injection=enabled) under a STRICT
// PeerAuthentication, with n Deployments web-0000... of replicas pods each: nginx with a TCP
// readiness probe on its declared port 80, which Istio's sidecar makes pass falsely and which
// the operator therefore redirects in every mTLS mode.
func createSet(ctx context.Context, cl client.Client, s set, replicas int) error {
	ns, n := s.ns, s.n
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"istio-injection": "enabled"}}}); err != nil {
		return err
	}
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	if err := cl.Create(ctx, pa); err != nil {
		return err
	}
	return parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		d := deployment(ns, deploymentName(i), int32(replicas))
		if s.redirected {
			d.Spec.Template.Annotations = map[string]string{istiomesh.RewriteAnnotation: "true"}
		}
		return cl.Create(ctx, d)
	})
}

func deploymentName(i int) string { return fmt.Sprintf("web-%04d", i) }

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	selector := map[string]string{appLabel: "web", "name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{benchLabel: ns}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: selector},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
					ReadinessProbe: &corev1.Probe{PeriodSeconds: 10, ProbeHandler: corev1.ProbeHandler{
						TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}},
				}}},
			},
		},
	}
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	return <-errs
}

// rolledOut applies kubectl rollout status's rules for a Deployment
// (k8s.io/kubectl/pkg/polymorphichelpers DeploymentStatusViewer): the controller has seen the
// current generation, every replica is updated, no old replica is left, and every updated
// replica is available.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= want &&
		d.Status.Replicas <= d.Status.UpdatedReplicas && d.Status.AvailableReplicas >= d.Status.UpdatedReplicas
}

func annotated(d *appsv1.Deployment) bool {
	return d.Spec.Template.Annotations[istiomesh.RewriteAnnotation] == "true"
}

// tracker follows every bench Deployment through one informer (a watch), and wakes waiters on
// each change.
type tracker struct {
	mu      sync.Mutex
	deps    map[string]*appsv1.Deployment // ns/name
	changed chan struct{}
	events  int
}

func newTracker(ctx context.Context, cs kubernetes.Interface) (*tracker, error) {
	t := &tracker{deps: map[string]*appsv1.Deployment{}, changed: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = benchLabel }))
	inf := factory.Apps().V1().Deployments().Informer()
	update := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok {
			t.mu.Lock()
			t.deps[d.Namespace+"/"+d.Name] = d
			t.events++
			close(t.changed)
			t.changed = make(chan struct{})
			t.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("the Deployment informer did not sync")
	}
	return t, nil
}

// get returns the latest Deployment ns/name and a channel closed at the next change.
func (t *tracker) get(ns, name string) (*appsv1.Deployment, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deps[ns+"/"+name], t.changed
}

// snapshot returns the Deployments of ns and a channel closed at the next change.
func (t *tracker) snapshot(ns string) ([]*appsv1.Deployment, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*appsv1.Deployment
	for _, d := range t.deps {
		if d.Namespace == ns {
			out = append(out, d)
		}
	}
	return out, t.changed
}

// waitFor waits until check(snapshot of ns) holds, re-checking at each change (at most every
// 50 ms) and at least every second.
func (t *tracker) waitFor(ctx context.Context, ns string, timeout time.Duration, check func([]*appsv1.Deployment) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ds, changed := t.snapshot(ns)
		if check(ds) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", ns, ctx.Err())
		case <-changed:
			time.Sleep(50 * time.Millisecond)
		case <-time.After(time.Second):
		}
	}
}

// waitRolledOut waits until Deployment ns/name of at least generation gen is rolled out.
func (t *tracker) waitRolledOut(ctx context.Context, ns, name string, gen int64) error {
	for {
		d, changed := t.get(ns, name)
		if d != nil && d.Generation >= gen && rolledOut(d) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/%s: %w", ns, name, ctx.Err())
		case <-changed:
		}
	}
}

// allAvailable holds when all n Deployments of a set are rolled out with every replica ready.
func allAvailable(n int) func([]*appsv1.Deployment) bool {
	return func(ds []*appsv1.Deployment) bool {
		if len(ds) < n {
			return false
		}
		for _, d := range ds {
			if !rolledOut(d) || d.Status.ReadyReplicas < *d.Spec.Replicas {
				return false
			}
		}
		return true
	}
}

// generations returns the generation of every bench Deployment by namespace/name.
func (t *tracker) generations() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.deps))
	for key, d := range t.deps {
		out[key] = d.Generation
	}
	return out
}
