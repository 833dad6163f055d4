package meshdouble

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// WebhookPath is the path the double's injection webhook is served at (the
// same path istiod uses).
const WebhookPath = "/inject"

// maxReviewBytes bounds the request body; the API server's own limit for an
// object is 3 MiB.
const maxReviewBytes = 8 << 20

// namespaceNameLabel is set by the API server on every namespace; istiomesh.Injection
// reads it to recognise system namespaces.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// Webhook serves a MutatingAdmissionWebhook at WebhookPath that applies
// Inject to Pods at CREATE and answers with a JSON Patch. It is the double of
// istiod's sidecar-injector webhook, to be registered with a real
// kube-apiserver (admissionReviewVersions ["v1"], rules: CREATE pods).
//
// Which pods are injected is decided by istiomesh.Injection(namespace labels, pod
// labels, pod annotations), the default istio-discovery webhook selectors
// plus injectRequired; pods with spec.hostNetwork are never injected, as in
// Istio. Pods the real injector would not inject, other resources and other
// operations are admitted unchanged. A pod that Inject refuses (an invalid
// status.sidecar.istio.io/port annotation) is denied, as Istio's webhook does.
//
// A Webhook is safe for concurrent use if Config is not modified while it
// serves.
type Webhook struct {
	// Config is the simulated mesh-wide injector configuration.
	Config Config
	// NamespaceLabels returns the labels of a namespace (normally read from
	// the API server). nil means every namespace has no labels other than
	// kubernetes.io/metadata.name, which the webhook always fills in from the
	// namespace name when missing, as the API server does. An error denies
	// the pod.
	NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error)
}

// ServeHTTP implements http.Handler. It answers 404 for any path other than
// WebhookPath, 405 for any method other than POST, and 400 for a body that is
// not an admission.k8s.io/v1 AdmissionReview with a request.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	serveAdmission(rw, r, WebhookPath, w.admit)
}

// serveAdmission answers one admission webhook call on path with admit's response: 404 for any
// other path, 405 for any method other than POST, 413 for a body over maxReviewBytes, and 400
// for a body that is not an admission.k8s.io/v1 AdmissionReview with a request.
func serveAdmission(rw http.ResponseWriter, r *http.Request, path string,
	admit func(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) {
	if r.URL.Path != path {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "only POST is allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		http.Error(rw, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxReviewBytes {
		http.Error(rw, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(rw, "decoding AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	gvk := admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	if review.APIVersion != gvk.GroupVersion().String() || review.Kind != gvk.Kind {
		http.Error(rw, fmt.Sprintf("expected %s %s, got %q %q",
			gvk.GroupVersion(), gvk.Kind, review.APIVersion, review.Kind), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(rw, "AdmissionReview has no request", http.StatusBadRequest)
		return
	}

	resp := admit(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		http.Error(rw, "encoding AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(out)
}

var podsResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// admit decides one admission request.
func (w *Webhook) admit(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource != podsResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(http.StatusBadRequest, "decoding pod: %v", err)
	}
	namespace := req.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}
	nsLabels := map[string]string{}
	if w.NamespaceLabels != nil {
		l, err := w.NamespaceLabels(ctx, namespace)
		if err != nil {
			return deny(http.StatusInternalServerError, "reading labels of namespace %q: %v", namespace, err)
		}
		maps.Copy(nsLabels, l)
	}
	if _, ok := nsLabels[namespaceNameLabel]; !ok {
		nsLabels[namespaceNameLabel] = namespace
	}
	if pod.Spec.HostNetwork {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	if injected, _ := istiomesh.Injection(nsLabels, pod.Labels, pod.Annotations, istiomesh.IstioVersion{}); !injected {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}

	mutated := pod.DeepCopy()
	if _, err := Inject(mutated, w.Config); err != nil {
		return deny(http.StatusInternalServerError, "%v", err)
	}
	mutatedJSON, err := json.Marshal(mutated)
	if err != nil {
		return deny(http.StatusInternalServerError, "encoding pod: %v", err)
	}
	ops, err := jsonpatch.CreatePatch(req.Object.Raw, mutatedJSON)
	if err != nil {
		return deny(http.StatusInternalServerError, "creating patch: %v", err)
	}
	if len(ops) == 0 {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return deny(http.StatusInternalServerError, "encoding patch: %v", err)
	}
	patchType := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &patchType}
}

func deny(code int32, format string, args ...any) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    code,
			Message: "meshdouble injector: " + fmt.Sprintf(format, args...),
		},
	}
}
