package analyze

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	securityv1beta1 "istio.io/client-go/pkg/apis/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
	"github.com/proberedirect/probe-redirect-operator/internal/plan"
)

// Scheme knows every kind the analysis reads: Kubernetes' own, ProbeRedirectPolicy, and Istio's
// security.istio.io v1 and v1beta1 PeerAuthentication. Kuma's Mesh and MeshTLS (KumaGroupVersion)
// are read as unstructured objects, as the operator reads them.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(v1alpha1.AddToScheme(Scheme))
	utilruntime.Must(securityv1.AddToScheme(Scheme))
	utilruntime.Must(securityv1beta1.AddToScheme(Scheme))
}

// KumaGroupVersion is the group version of Kuma's Mesh and MeshTLS.
var KumaGroupVersion = schema.GroupVersion{Group: "kuma.io", Version: "v1alpha1"}

var decoder = serializer.NewCodecFactory(Scheme).UniversalDeserializer()

// DecodeManifests reads a stream of YAML or JSON documents (the output of `helm template` or
// `kustomize build`, or files written by hand) into objs. file names the stream in Sources;
// defaultNamespace is given to namespaced objects that name none, as kubectl does. Lists (kind
// List) are read item by item. Documents of kinds the analysis does not judge are recorded in
// objs.Ignored, and so is a Kuma Mesh or MeshTLS that Kuma would refuse (with the reason in Why);
// a document that is not valid YAML, or a known kind that does not decode, is an
// error naming the file and line.
func DecodeManifests(r io.Reader, file, defaultNamespace string, objs *Objects) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, d := range splitDocuments(data) {
		if len(bytes.TrimSpace(stripComments(d.body))) == 0 {
			continue
		}
		src := Source{File: file, Line: d.line + leadingLines(d.body)}
		if err := decodeDocument(d.body, src, defaultNamespace, objs); err != nil {
			return fmt.Errorf("%s:%d: %w", file, src.Line, err)
		}
	}
	return nil
}

// document is one YAML document of a stream and the line it starts on (1-based).
type document struct {
	body []byte
	line int
}

// splitDocuments splits a YAML stream at its "---" separator lines (which may carry a comment),
// as the YAML reader of k8s.io/apimachinery does, keeping each document's first line number.
func splitDocuments(data []byte) []document {
	var docs []document
	current := document{line: 1}
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(l, []byte("---")); ok && (len(bytes.TrimSpace(rest)) == 0 || (len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') && bytes.HasPrefix(bytes.TrimSpace(rest), []byte("#")))) {
			docs = append(docs, current)
			current = document{line: i + 2}
			continue
		}
		current.body = append(current.body, l...)
	}
	return append(docs, current)
}

func decodeDocument(doc []byte, src Source, defaultNamespace string, objs *Objects) error {
	json, err := yaml.ToJSON(doc)
	if err != nil {
		return err
	}
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(json, &meta); err != nil {
		return err
	}
	if meta.Kind == "" || meta.APIVersion == "" {
		// A values.yaml, a Chart.yaml or another file that is not a Kubernetes object.
		objs.Ignored = append(objs.Ignored, Ignored{Source: src, Why: "not a Kubernetes object (no apiVersion and kind)"})
		return nil
	}
	obj, gvk, err := decoder.Decode(json, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		if gv, _ := schema.ParseGroupVersion(meta.APIVersion); gv == KumaGroupVersion && (meta.Kind == "Mesh" || meta.Kind == "MeshTLS") {
			addKuma(json, meta.Kind, src, defaultNamespace, objs)
			return nil
		}
		var m metav1.PartialObjectMetadata
		_ = yaml.Unmarshal(json, &m)
		objs.Ignored = append(objs.Ignored, Ignored{APIVersion: meta.APIVersion, Kind: meta.Kind, Name: m.Name, Source: src})
		return nil
	}
	if err != nil {
		return err
	}
	if list, ok := obj.(*corev1.List); ok {
		for _, item := range list.Items {
			if err := decodeDocument(item.Raw, src, defaultNamespace, objs); err != nil {
				return err
			}
		}
		return nil
	}
	if apimeta.IsListType(obj) {
		// A typed list, such as a DeploymentList.
		items, err := apimeta.ExtractList(obj)
		if err != nil {
			return err
		}
		itemKind := strings.TrimSuffix(gvk.Kind, "List")
		for _, item := range items {
			add(item, src, gvk.GroupVersion().WithKind(itemKind), defaultNamespace, objs)
		}
		return nil
	}
	add(obj, src, *gvk, defaultNamespace, objs)
	return nil
}

// add files one decoded object under its kind.
func add(obj runtime.Object, src Source, gvk schema.GroupVersionKind, defaultNamespace string, objs *Objects) {
	kind := gvk.Kind
	if o, ok := obj.(plan.Object); ok && o.GetNamespace() == "" && kind != "Namespace" {
		o.SetNamespace(defaultNamespace)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		objs.Namespaces = append(objs.Namespaces, o)
	case *securityv1.PeerAuthentication:
		objs.PeerAuthentications = append(objs.PeerAuthentications, o)
	case *securityv1beta1.PeerAuthentication:
		// v1beta1 has the same schema as v1 (Istio serves both); the resolver reads v1.
		objs.PeerAuthentications = append(objs.PeerAuthentications, &securityv1.PeerAuthentication{
			ObjectMeta: o.ObjectMeta, Spec: *o.Spec.DeepCopy()})
	case *v1alpha1.ProbeRedirectPolicy:
		objs.Policies = append(objs.Policies, o)
	default:
		m, _ := obj.(plan.Object)
		name, why := "", ""
		if m != nil {
			name = m.GetName()
		}
		for i := range plan.WorkloadKinds {
			k := &plan.WorkloadKinds[i]
			if string(k.Kind) != kind {
				continue
			}
			if gvk.GroupVersion() == appsv1.SchemeGroupVersion {
				objs.Workloads = append(objs.Workloads, Workload{Workload: plan.NewWorkload(k, obj.(plan.Object), false), Source: src})
				return
			}
			// apps/v1beta1, apps/v1beta2 and extensions/v1beta1 are gone from the API server.
			why = "served no longer: write it as apps/v1"
		}
		objs.Ignored = append(objs.Ignored, Ignored{APIVersion: gvk.GroupVersion().String(), Kind: kind, Name: name, Source: src, Why: why})
	}
}

// addKuma files a Kuma Mesh or MeshTLS document, read as the operator reads it from the cluster
// (kuma.MeshFromUnstructured, MeshTLSFromUnstructured); one that cannot be read is Ignored with the
// reason, and the workloads are judged without it, as the operator does.
func addKuma(json []byte, kind string, src Source, defaultNamespace string, objs *Objects) {
	u := &unstructured.Unstructured{}
	err := u.UnmarshalJSON(json)
	if err == nil && kind == "MeshTLS" && u.GetNamespace() == "" {
		u.SetNamespace(defaultNamespace)
	}
	if err == nil {
		switch kind {
		case "Mesh":
			var m kumamesh.Mesh
			if m, err = kumamesh.MeshFromUnstructured(u); err == nil {
				objs.KumaMeshes = append(objs.KumaMeshes, m)
				return
			}
		case "MeshTLS":
			var p kumamesh.MeshTLS
			if p, err = kumamesh.MeshTLSFromUnstructured(u); err == nil {
				objs.KumaMeshTLSes = append(objs.KumaMeshTLSes, p)
				return
			}
		}
	}
	objs.Ignored = append(objs.Ignored, KumaIgnored(kind, u.GetName(), src, err))
}

// KumaIgnored is the Ignored entry of a Kuma Mesh or MeshTLS that cannot be read.
func KumaIgnored(kind, name string, src Source, err error) Ignored {
	return Ignored{APIVersion: KumaGroupVersion.String(), Kind: kind, Name: name, Source: src,
		Why: fmt.Sprintf("cannot be read, so its mTLS settings are left out: %v", err)}
}

// leadingLines counts the blank and comment lines before a document's first content.
func leadingLines(doc []byte) int {
	n := 0
	for _, l := range strings.SplitAfter(string(doc), "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			return n
		}
		n++
	}
	return 0
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(doc, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if !bytes.HasPrefix(t, []byte("#")) {
			out = append(out, l...)
		}
	}
	return out
}
