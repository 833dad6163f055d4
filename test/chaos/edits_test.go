//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// editor is another field manager (a CI pipeline, a person with kubectl) changing the
// Deployments the operator annotates.
const editor = "chaos-editor"

// Issue 14.4: 1,000 edits by another field manager (labels, annotations, image, replicas) to the
// selected Deployments while the operator annotates them. Every edit's last value is in place at
// the end, and so is the operator's annotation.
func TestConcurrentEdits(t *testing.T) {
	workloads := chaosSize("CHAOS_EDITS_WORKLOADS", 40)
	edits := chaosSize("CHAOS_EDITS", 1000)
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, k8s, "edits")
	strictPeerAuthentication(t, k8s, ns)
	createDeployments(t, k8s, ns, workloads)
	startOperator(t, cluster, "operator-edits")
	g.Expect(k8s.Create(ctx, policy(ns, 10))).To(Succeed())

	// want holds, per Deployment and field, the last value the editor wrote.
	type field struct{ deployment, name string }
	var mu sync.Mutex
	want := map[field]string{}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	kinds := []string{"label", "annotation", "template-annotation", "image", "replicas"}
	began := time.Now()
	conflicts := 0
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				mu.Lock()
				name := fmt.Sprintf("web-%03d", r.IntN(workloads))
				kind := kinds[r.IntN(len(kinds))]
				mu.Unlock()
				key := types.NamespacedName{Namespace: ns, Name: name}
				var value string
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					d := &appsv1.Deployment{}
					if err := k8s.Get(ctx, key, d); err != nil {
						return err
					}
					switch kind {
					case "label":
						value = fmt.Sprintf("v%d", i)
						d.Labels["edit.example/label"] = value
					case "annotation":
						value = fmt.Sprintf("v%d", i)
						d.Annotations["edit.example/annotation"] = value
					case "template-annotation":
						value = fmt.Sprintf("v%d", i)
						d.Spec.Template.Annotations["edit.example/template"] = value
					case "image":
						value = fmt.Sprintf("nginx:1.27.%d", i)
						d.Spec.Template.Spec.Containers[0].Image = value
					case "replicas":
						n := int32(1 + i%2)
						value = fmt.Sprint(n)
						d.Spec.Replicas = &n
					}
					err := k8s.Update(ctx, d, client.FieldOwner(editor))
					if apierrors.IsConflict(err) {
						mu.Lock()
						conflicts++
						mu.Unlock()
					}
					return err
				})
				if err != nil {
					t.Errorf("edit %d (%s of %s): %v", i, kind, name, err)
					continue
				}
				mu.Lock()
				want[field{name, kind}] = value
				mu.Unlock()
			}
		}()
	}
	for i := range edits {
		work <- i
	}
	close(work)
	wg.Wait()
	editing := time.Since(began)

	// Everything settles: the operator's annotation everywhere, rollouts done.
	g.Eventually(func(g Gomega) {
		ds, err := listDeployments(ctx, k8s, ns)
		g.Expect(err).NotTo(HaveOccurred())
		for i := range ds {
			g.Expect(annotated(&ds[i])).To(BeTrue(), "%s lost the operator's annotation", ds[i].Name)
			g.Expect(rolledOut(&ds[i])).To(BeTrue(), "%s still rolling", ds[i].Name)
		}
	}, 10*time.Minute, interval).Should(Succeed())

	ds, err := listDeployments(ctx, k8s, ns)
	g.Expect(err).NotTo(HaveOccurred())
	kept := 0
	for i := range ds {
		d := &ds[i]
		got := map[string]string{
			"label":               d.Labels["edit.example/label"],
			"annotation":          d.Annotations["edit.example/annotation"],
			"template-annotation": d.Spec.Template.Annotations["edit.example/template"],
			"image":               d.Spec.Template.Spec.Containers[0].Image,
			"replicas":            fmt.Sprint(*d.Spec.Replicas),
		}
		for _, kind := range kinds {
			if v, ok := want[field{d.Name, kind}]; ok {
				g.Expect(got[kind]).To(Equal(v), "%s: the editor's last %s was lost", d.Name, kind)
				kept++
			}
		}
		g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(istiomesh.RewriteAnnotation, "true"))
		for k, v := range userTemplateAnnotations {
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(k, v), d.Name)
		}
	}
	t.Logf("FIGURE edits: %d edits by another field manager in %s (%d conflicts retried) while the operator annotated %d Deployments; "+
		"%d last values checked, all kept; the operator's annotation on all %d",
		edits, editing.Round(100*time.Millisecond), conflicts, workloads, kept, workloads)
}
