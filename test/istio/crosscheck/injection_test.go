package crosscheck

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/test/istio/istiod"
)

// controlPlane is one installed revision: the chart's webhooks, as the API
// server evaluates them, in front of Istio's injector.
type controlPlane struct {
	webhooks []admissionregistrationv1.MutatingWebhook
	injector http.Handler
}

func installRevision(t *testing.T, revision string) controlPlane {
	t.Helper()
	chart, err := istiod.Render(istiod.RenderOptions{Revision: revision})
	if err != nil {
		t.Fatal(err)
	}
	mwc, err := chart.WebhookConfiguration("https://127.0.0.1/inject", nil)
	if err != nil {
		t.Fatal(err)
	}
	injector, err := istiod.NewInjector(chart)
	if err != nil {
		t.Fatal(err)
	}
	return controlPlane{webhooks: mwc.Webhooks, injector: injector}
}

// selects evaluates a webhook's namespaceSelector and objectSelector the way
// the API server does (apimachinery's LabelSelectorAsSelector).
func selects(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return s.Matches(labels.Set(set))
}

// injects sends pod through every webhook of cp that selects it, as the API
// server would, and reports whether Istio's injector added istio-proxy.
func (cp controlPlane) injects(t *testing.T, namespaceLabels map[string]string, pod *corev1.Pod) bool {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range cp.webhooks {
		if !selects(t, w.NamespaceSelector, namespaceLabels) || !selects(t, w.ObjectSelector, pod.Labels) {
			continue
		}
		review := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID:       types.UID("u"),
				Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
				Namespace: pod.Namespace,
				Operation: admissionv1.Create,
				Object:    runtime.RawExtension{Raw: raw},
			},
		}
		body, err := json.Marshal(review)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, istiod.InjectPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		cp.injector.ServeHTTP(rec, req)
		var resp admissionv1.AdmissionReview
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil || resp.Response == nil {
			t.Fatalf("webhook %s answered %d: %s", w.Name, rec.Code, rec.Body.String())
		}
		if !resp.Response.Allowed {
			t.Fatalf("webhook %s denied the pod: %v", w.Name, resp.Response.Result)
		}
		if bytes.Contains(resp.Response.Patch, []byte(`"name":"istio-proxy"`)) {
			return true
		}
	}
	return false
}

// TestInjectionDecisionAgreesWithIstio compares internal/mesh's injection
// decision (ReadTemplate: Injection plus the hostNetwork rule) with what
// Istio's injector does, for every combination below of namespace, namespace
// labels, pod labels, pod annotation and hostNetwork: the chart's webhooks of
// the default revision and of a "canary" revision select the pod by their
// namespaceSelector and objectSelector as the API server would, and Istio's
// webhook (injectRequired, the injection template) decides. The operator
// assumes named revisions exist, so both are installed.
func TestInjectionDecisionAgreesWithIstio(t *testing.T) {
	planes := []controlPlane{installRevision(t, ""), installRevision(t, "canary")}

	absent := "<absent>"
	nsInjection := []string{absent, "enabled", "disabled", "Enabled"}
	revisions := []string{absent, "default", "canary", ""}
	podInject := []string{absent, "true", "false", "False", "", "yes"}
	annotationInject := []string{absent, "true", "false", "no"}
	namespaces := []string{"shop", "kube-system", "kube-public"}
	put := func(m map[string]string, k, v string) {
		if v != absent {
			m[k] = v
		}
	}

	compared, injected, disagreements := 0, 0, 0
	for _, namespace := range namespaces {
		for _, nsInj := range nsInjection {
			for _, nsRev := range revisions {
				for _, podInj := range podInject {
					for _, podRev := range revisions {
						for _, ann := range annotationInject {
							for _, hostNetwork := range []bool{false, true} {
								if namespace != "shop" && (nsRev != absent || podRev != absent || ann != absent || hostNetwork) {
									continue // system namespaces: the namespace and pod labels are enough
								}
								nsLabels := map[string]string{"kubernetes.io/metadata.name": namespace}
								put(nsLabels, "istio-injection", nsInj)
								put(nsLabels, "istio.io/rev", nsRev)
								podLabels := map[string]string{"app": "cart"}
								put(podLabels, "sidecar.istio.io/inject", podInj)
								put(podLabels, "istio.io/rev", podRev)
								annotations := map[string]string{}
								put(annotations, "sidecar.istio.io/inject", ann)
								template := &corev1.PodTemplateSpec{
									ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: annotations},
									Spec: corev1.PodSpec{
										HostNetwork: hostNetwork,
										Containers:  []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
									},
								}
								pod := &corev1.Pod{
									TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
									ObjectMeta: *template.ObjectMeta.DeepCopy(),
									Spec:       *template.Spec.DeepCopy(),
								}
								pod.Namespace, pod.GenerateName = namespace, "cart-"

								want := false
								for _, cp := range planes {
									want = want || cp.injects(t, nsLabels, pod)
								}
								got := istiomesh.ReadTemplate(nsLabels, template, istiomesh.DefaultStatusPort, istiomesh.IstioVersion{})
								compared++
								if want {
									injected++
								}
								if got.Injected != want {
									disagreements++
									if disagreements <= 15 {
										t.Errorf("namespace %s %v, pod labels %v, annotations %v, hostNetwork %v: internal/mesh says injected=%v (%s), Istio injected=%v",
											namespace, nsLabels, podLabels, annotations, hostNetwork, got.Injected, got.InjectionReason, want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("compared %d injection decisions (%d injected by Istio): %d disagreements", compared, injected, disagreements)
	if injected == 0 || injected == compared {
		t.Errorf("Istio injected %d of %d: the generated cases do not cover both outcomes", injected, compared)
	}
}
