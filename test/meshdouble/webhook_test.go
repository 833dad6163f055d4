package meshdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// namespaces is a fake namespace label lookup.
func namespaces(labels map[string]map[string]string) func(context.Context, string) (map[string]string, error) {
	return func(_ context.Context, ns string) (map[string]string, error) {
		l, ok := labels[ns]
		if !ok {
			return nil, errors.New("namespace " + ns + " not found")
		}
		return l, nil
	}
}

var testNamespaces = map[string]map[string]string{
	"mesh":  {"istio-injection": "enabled"},
	"rev":   {"istio.io/rev": "stable"},
	"plain": {},
	"off":   {"istio-injection": "disabled"},
	// The API server sets kubernetes.io/metadata.name; the webhook must
	// fill it in when the lookup does not return it.
	"kube-system": {"istio-injection": "enabled"},
}

func newTestServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(&Webhook{Config: cfg, NamespaceLabels: namespaces(testNamespaces)})
	t.Cleanup(srv.Close)
	return srv
}

func reviewFor(g Gomega, op admissionv1.Operation, namespace string, pod *corev1.Pod) []byte {
	raw, err := json.Marshal(pod)
	g.Expect(err).NotTo(HaveOccurred())
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("uid-" + namespace),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: namespace,
			Operation: op,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	g.Expect(err).NotTo(HaveOccurred())
	return body
}

func post(g Gomega, url string, body []byte) (*http.Response, []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp, out
}

func admit(g Gomega, srv *httptest.Server, body []byte) *admissionv1.AdmissionReview {
	resp, out := post(g, srv.URL+WebhookPath, body)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(out))
	g.Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	var review admissionv1.AdmissionReview
	g.Expect(json.Unmarshal(out, &review)).To(Succeed())
	g.Expect(review.APIVersion).To(Equal("admission.k8s.io/v1"))
	g.Expect(review.Kind).To(Equal("AdmissionReview"))
	g.Expect(review.Response).NotTo(BeNil())
	return &review
}

// roundTrip passes a pod through JSON, as the API server would store it.
func roundTrip(g Gomega, pod *corev1.Pod) *corev1.Pod {
	b, err := json.Marshal(pod)
	g.Expect(err).NotTo(HaveOccurred())
	var out corev1.Pod
	g.Expect(json.Unmarshal(b, &out)).To(Succeed())
	return &out
}

func TestWebhookPatchYieldsInjectResult(t *testing.T) {
	for _, tc := range []struct {
		name        string
		namespace   string
		labels      map[string]string
		annotations map[string]string
		cfg         Config
		rewritten   bool
	}{
		{name: "namespace enabled, mesh default on", namespace: "mesh",
			cfg: Config{RewriteAppHTTPProbe: true}, rewritten: true},
		{name: "namespace enabled, opt-in mesh, pod opts in", namespace: "mesh",
			annotations: map[string]string{istiomesh.RewriteAnnotation: "true"}, rewritten: true},
		{name: "namespace enabled, opt-in mesh, no annotation", namespace: "mesh", rewritten: false},
		{name: "namespace revision", namespace: "rev",
			cfg: Config{RewriteAppHTTPProbe: true, StatusPort: 15021}, rewritten: true},
		{name: "pod label in plain namespace", namespace: "plain",
			labels: map[string]string{"sidecar.istio.io/inject": "true"},
			cfg:    Config{RewriteAppHTTPProbe: true}, rewritten: true},
		{name: "status port annotation", namespace: "mesh",
			annotations: map[string]string{istiomesh.StatusPortAnnotation: "123"},
			cfg:         Config{RewriteAppHTTPProbe: true}, rewritten: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := newTestServer(t, tc.cfg)
			pod := webPod(tc.annotations)
			pod.Namespace = "" // as for most CREATEs: the namespace is on the request
			pod.Labels = tc.labels

			review := admit(g, srv, reviewFor(g, admissionv1.Create, tc.namespace, pod))
			resp := review.Response
			g.Expect(resp.UID).To(Equal(types.UID("uid-" + tc.namespace)))
			g.Expect(resp.Allowed).To(BeTrue(), "%+v", resp.Result)
			g.Expect(resp.PatchType).NotTo(BeNil())
			g.Expect(*resp.PatchType).To(Equal(admissionv1.PatchTypeJSONPatch))
			g.Expect(resp.Patch).NotTo(BeEmpty())

			patch, err := jsonpatch.DecodePatch(resp.Patch)
			g.Expect(err).NotTo(HaveOccurred())
			original, err := json.Marshal(pod)
			g.Expect(err).NotTo(HaveOccurred())
			patched, err := patch.Apply(original)
			g.Expect(err).NotTo(HaveOccurred())
			var got corev1.Pod
			g.Expect(json.Unmarshal(patched, &got)).To(Succeed())

			want := pod.DeepCopy()
			rewritten, err := Inject(want, tc.cfg)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rewritten).To(Equal(tc.rewritten))
			g.Expect(&got).To(Equal(roundTrip(g, want)))
			g.Expect(proxies(&got.Spec)).To(HaveLen(1))
			if tc.rewritten {
				g.Expect(probersEnv(&got.Spec)).To(HaveLen(1))
			} else {
				g.Expect(probersEnv(&got.Spec)).To(BeEmpty())
			}
		})
	}
}

func TestWebhookAdmitsUnchanged(t *testing.T) {
	hostNetwork := webPod(nil)
	hostNetwork.Spec.HostNetwork = true
	optedOut := webPod(nil)
	optedOut.Labels = map[string]string{"sidecar.istio.io/inject": "false"}
	for _, tc := range []struct {
		name      string
		op        admissionv1.Operation
		namespace string
		pod       *corev1.Pod
	}{
		{name: "namespace without injection label", op: admissionv1.Create, namespace: "plain", pod: webPod(nil)},
		{name: "namespace injection disabled", op: admissionv1.Create, namespace: "off", pod: webPod(nil)},
		{name: "system namespace", op: admissionv1.Create, namespace: "kube-system", pod: webPod(nil)},
		{name: "pod opted out", op: admissionv1.Create, namespace: "mesh", pod: optedOut},
		{name: "host network", op: admissionv1.Create, namespace: "mesh", pod: hostNetwork},
		{name: "update", op: admissionv1.Update, namespace: "mesh", pod: webPod(nil)},
		{name: "delete", op: admissionv1.Delete, namespace: "mesh", pod: webPod(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := newTestServer(t, Config{RewriteAppHTTPProbe: true})
			review := admit(g, srv, reviewFor(g, tc.op, tc.namespace, tc.pod))
			g.Expect(review.Response.Allowed).To(BeTrue())
			g.Expect(review.Response.Patch).To(BeNil())
			g.Expect(review.Response.PatchType).To(BeNil())
			g.Expect(review.Response.UID).To(Equal(types.UID("uid-" + tc.namespace)))
		})
	}

	t.Run("other resource", func(t *testing.T) {
		g := NewWithT(t)
		srv := newTestServer(t, Config{RewriteAppHTTPProbe: true})
		var review admissionv1.AdmissionReview
		g.Expect(json.Unmarshal(reviewFor(g, admissionv1.Create, "mesh", webPod(nil)), &review)).To(Succeed())
		review.Request.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		body, err := json.Marshal(review)
		g.Expect(err).NotTo(HaveOccurred())
		out := admit(g, srv, body)
		g.Expect(out.Response.Allowed).To(BeTrue())
		g.Expect(out.Response.Patch).To(BeNil())
	})
}

func TestWebhookDenies(t *testing.T) {
	t.Run("invalid status port annotation", func(t *testing.T) {
		g := NewWithT(t)
		srv := newTestServer(t, Config{RewriteAppHTTPProbe: true})
		pod := webPod(map[string]string{istiomesh.StatusPortAnnotation: "http"})
		review := admit(g, srv, reviewFor(g, admissionv1.Create, "mesh", pod))
		g.Expect(review.Response.Allowed).To(BeFalse())
		g.Expect(review.Response.Patch).To(BeNil())
		g.Expect(review.Response.Result.Message).To(ContainSubstring(istiomesh.StatusPortAnnotation))
	})
	t.Run("namespace lookup fails", func(t *testing.T) {
		g := NewWithT(t)
		srv := newTestServer(t, Config{RewriteAppHTTPProbe: true})
		review := admit(g, srv, reviewFor(g, admissionv1.Create, "missing", webPod(nil)))
		g.Expect(review.Response.Allowed).To(BeFalse())
		g.Expect(review.Response.Result.Message).To(ContainSubstring("missing"))
	})
	t.Run("object is not a pod", func(t *testing.T) {
		g := NewWithT(t)
		srv := newTestServer(t, Config{RewriteAppHTTPProbe: true})
		var review admissionv1.AdmissionReview
		g.Expect(json.Unmarshal(reviewFor(g, admissionv1.Create, "mesh", webPod(nil)), &review)).To(Succeed())
		review.Request.Object.Raw = []byte(`{"spec":{"containers":"nope"}}`)
		body, err := json.Marshal(review)
		g.Expect(err).NotTo(HaveOccurred())
		out := admit(g, srv, body)
		g.Expect(out.Response.Allowed).To(BeFalse())
		g.Expect(out.Response.Result.Code).To(Equal(int32(http.StatusBadRequest)))
	})
}

func TestWebhookRejectsMalformedRequests(t *testing.T) {
	g := NewWithT(t)
	valid := reviewFor(g, admissionv1.Create, "mesh", webPod(nil))
	var v1beta1 map[string]any
	g.Expect(json.Unmarshal(valid, &v1beta1)).To(Succeed())
	v1beta1["apiVersion"] = "admission.k8s.io/v1beta1"
	v1beta1Body, err := json.Marshal(v1beta1)
	g.Expect(err).NotTo(HaveOccurred())

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   []byte
		status int
	}{
		{name: "not JSON", method: http.MethodPost, path: WebhookPath, body: []byte("not json"), status: http.StatusBadRequest},
		{name: "empty body", method: http.MethodPost, path: WebhookPath, body: nil, status: http.StatusBadRequest},
		{name: "no request", method: http.MethodPost, path: WebhookPath,
			body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), status: http.StatusBadRequest},
		{name: "no TypeMeta", method: http.MethodPost, path: WebhookPath,
			body: []byte(`{"request":{"uid":"x"}}`), status: http.StatusBadRequest},
		{name: "v1beta1 review", method: http.MethodPost, path: WebhookPath, body: v1beta1Body, status: http.StatusBadRequest},
		{name: "GET", method: http.MethodGet, path: WebhookPath, status: http.StatusMethodNotAllowed},
		{name: "wrong path", method: http.MethodPost, path: "/mutate", body: valid, status: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := newTestServer(t, Config{RewriteAppHTTPProbe: true})
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
			g.Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			g.Expect(resp.StatusCode).To(Equal(tc.status))
		})
	}
}

// A nil NamespaceLabels treats every namespace as unlabelled: only pods that
// opt in themselves are injected.
func TestWebhookNilNamespaceLabels(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(&Webhook{Config: Config{RewriteAppHTTPProbe: true}})
	defer srv.Close()

	review := admit(g, srv, reviewFor(g, admissionv1.Create, "any", webPod(nil)))
	g.Expect(review.Response.Allowed).To(BeTrue())
	g.Expect(review.Response.Patch).To(BeNil())

	pod := webPod(nil)
	pod.Labels = map[string]string{"sidecar.istio.io/inject": "true"}
	review = admit(g, srv, reviewFor(g, admissionv1.Create, "any", pod))
	g.Expect(review.Response.Allowed).To(BeTrue())
	g.Expect(review.Response.Patch).NotTo(BeEmpty())
}
