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

package compact

import (
	"fmt"
	"strconv"
	"sync"
	"unique"
	"unsafe"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// message is a typed Kubernetes object with the protobuf methods Kubernetes generates for it
// (k8s.io/api, generated.pb.go).
type message interface {
	metav1.Object
	runtime.Object
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// kind says how the objects of one API kind are held.
type kind struct {
	name      string
	newObject func() message
	// split moves what many objects of the kind hold alike out of obj, into pods: at metaPart
	// metadata (what all pods of a ReplicaSet share: labels, owners, finalizers; a workload's
	// managedFields), at annotationsPart a pod's annotations (the same on pods one injector made
	// from one template, but per pod where a CNI records the pod's address there), at specPart a
	// pod spec (a pod's, or a workload's pod template's). A part a kind does not share
	// is nil; split is nil for a kind whose objects share nothing. join puts the parts back.
	split func(obj message) [parts]*corev1.Pod
	join  func(obj message, shared [parts]*corev1.Pod)
	// empty is the encoding of an object of the kind with nothing in it: an Object whose own part
	// is that stores none.
	empty     string
	emptyOnce sync.Once
}

// The shared parts.
const (
	metaPart = iota
	annotationsPart
	specPart
	parts
)

func (k *kind) emptyEncoding() string {
	k.emptyOnce.Do(func() {
		b, _ := k.newObject().Marshal()
		k.empty = string(b)
	})
	return k.empty
}

var (
	podKind = &kind{name: "Pod", newObject: func() message { return &corev1.Pod{} },
		// Every pod of a ReplicaSet (or of a StatefulSet's revision) has the same labels, owner and
		// finalizers; pods made from the same containers have the same spec, whichever workload they
		// belong to; the annotations are apart, as they may be either.
		split: func(obj message) [parts]*corev1.Pod {
			p := obj.(*corev1.Pod)
			meta := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels, OwnerReferences: p.OwnerReferences, Finalizers: p.Finalizers}}
			annotations := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: p.Annotations}}
			spec := &corev1.Pod{Spec: p.Spec}
			p.Labels, p.Annotations, p.OwnerReferences, p.Finalizers, p.Spec = nil, nil, nil, nil, corev1.PodSpec{}
			return [parts]*corev1.Pod{metaPart: meta, annotationsPart: annotations, specPart: spec}
		},
		join: func(obj message, s [parts]*corev1.Pod) {
			p, meta := obj.(*corev1.Pod), s[metaPart]
			p.Labels, p.OwnerReferences, p.Finalizers = meta.Labels, meta.OwnerReferences, meta.Finalizers
			p.Annotations, p.Spec = s[annotationsPart].Annotations, s[specPart].Spec
		},
	}
	deploymentKind = &kind{name: "Deployment", newObject: func() message { return &appsv1.Deployment{} },
		split: splitTemplate(func(obj message) *corev1.PodSpec { return &obj.(*appsv1.Deployment).Spec.Template.Spec }),
		join:  joinTemplate(func(obj message) *corev1.PodSpec { return &obj.(*appsv1.Deployment).Spec.Template.Spec }),
	}
	statefulSetKind = &kind{name: "StatefulSet", newObject: func() message { return &appsv1.StatefulSet{} },
		split: splitTemplate(func(obj message) *corev1.PodSpec { return &obj.(*appsv1.StatefulSet).Spec.Template.Spec }),
		join:  joinTemplate(func(obj message) *corev1.PodSpec { return &obj.(*appsv1.StatefulSet).Spec.Template.Spec }),
	}
	daemonSetKind = &kind{name: "DaemonSet", newObject: func() message { return &appsv1.DaemonSet{} },
		split: splitTemplate(func(obj message) *corev1.PodSpec { return &obj.(*appsv1.DaemonSet).Spec.Template.Spec }),
		join:  joinTemplate(func(obj message) *corev1.PodSpec { return &obj.(*appsv1.DaemonSet).Spec.Template.Spec }),
	}
	eventKind = &kind{name: "Event", newObject: func() message { return &corev1.Event{} }}
)

// splitTemplate shares a workload's pod spec, and its managedFields: workloads made from one chart
// or manifest differ in their names and labels, rarely in their containers, and the operator's
// cache keeps one canonical managedFields entry (controllers.SlimWorkload).
func splitTemplate(spec func(message) *corev1.PodSpec) func(message) [parts]*corev1.Pod {
	return func(obj message) [parts]*corev1.Pod {
		var shared [parts]*corev1.Pod
		if fields := obj.GetManagedFields(); fields != nil {
			shared[metaPart] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ManagedFields: fields}}
			obj.SetManagedFields(nil)
		}
		s := spec(obj)
		shared[specPart] = &corev1.Pod{Spec: *s}
		*s = corev1.PodSpec{}
		return shared
	}
}

func joinTemplate(spec func(message) *corev1.PodSpec) func(message, [parts]*corev1.Pod) {
	return func(obj message, shared [parts]*corev1.Pod) {
		if fields := shared[metaPart].ManagedFields; fields != nil {
			obj.SetManagedFields(fields)
		}
		*spec(obj) = shared[specPart].Spec
	}
}

// kindOf returns how obj's kind is held, or nil for a kind this package does not hold.
func kindOf(obj runtime.Object) *kind {
	switch obj.(type) {
	case *corev1.Pod:
		return podKind
	case *appsv1.Deployment:
		return deploymentKind
	case *appsv1.StatefulSet:
		return statefulSetKind
	case *appsv1.DaemonSet:
		return daemonSetKind
	case *corev1.Event:
		return eventKind
	}
	return nil
}

// Holds reports whether Pack takes objects of obj's Go type.
func Holds(obj runtime.Object) bool { return kindOf(obj) != nil }

// Bits of Object.has.
const (
	hasUID = 1 << iota
	hasResourceVersion
	hasCreated
	hasOwn
	hasShared // hasShared << part for each part
)

// Every part's bit must fit in Object.has.
const _ = uint8(hasShared << (parts - 1))

// Object is one Pod, Deployment, StatefulSet, DaemonSet or Event held compactly. It implements
// client.Object (metav1.Object and runtime.Object) so that informers can key, index and hand it to
// event handlers; its DeepCopyObject returns the typed object it holds. An Object is not changed
// in place by anything but its setters, which may re-encode it: the cache's copies are read-only.
type Object struct {
	kind            *kind
	name            string
	namespace       unique.Handle[string]
	uid             uuid.UUID
	resourceVersion uint64
	generation      int64
	// created is the creation timestamp in Unix nanoseconds.
	created int64
	// own is the protobuf encoding of the object less its identity fields and its shared parts
	// (a deletion timestamp, being rare, is held there).
	own string
	// shared are the protobuf encodings of the parts many objects hold alike (kind.split).
	shared [parts]unique.Handle[string]
	has    uint8
}

// Pack returns the compact form of obj, a *corev1.Pod, *appsv1.Deployment, *appsv1.StatefulSet,
// *appsv1.DaemonSet or *corev1.Event. It takes obj over: obj is left changed and must not be used
// afterwards. Its error says that obj is of another kind, or that it cannot be encoded.
func Pack(obj runtime.Object) (*Object, error) {
	k := kindOf(obj)
	if k == nil {
		return nil, fmt.Errorf("compact: %T is not a kind held compactly", obj)
	}
	m := obj.(message)
	o := &Object{kind: k, name: m.GetName(), namespace: unique.Make(m.GetNamespace()), generation: m.GetGeneration()}
	m.SetName("")
	m.SetNamespace("")
	m.SetGeneration(0)
	// A UID or resourceVersion that does not read back the same from its compact value (a UID that
	// is not a canonical UUID; resourceVersions are opaque to clients) stays in the encoding.
	if id, err := uuid.Parse(string(m.GetUID())); err == nil && id.String() == string(m.GetUID()) {
		o.uid, o.has = id, o.has|hasUID
		m.SetUID("")
	}
	if rv, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64); err == nil && strconv.FormatUint(rv, 10) == m.GetResourceVersion() {
		o.resourceVersion, o.has = rv, o.has|hasResourceVersion
		m.SetResourceVersion("")
	}
	if t := m.GetCreationTimestamp(); !t.IsZero() && representable(t) {
		o.created, o.has = t.UnixNano(), o.has|hasCreated
		m.SetCreationTimestamp(metav1.Time{})
	}
	if k.split != nil {
		for i, part := range k.split(m) {
			if part == nil {
				continue
			}
			b, err := part.Marshal()
			if err != nil {
				return nil, fmt.Errorf("compact: encoding %s %s/%s: %w", k.name, o.namespace.Value(), o.name, err)
			}
			o.shared[i], o.has = unique.Make(string(b)), o.has|hasShared<<i
		}
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("compact: encoding %s %s/%s: %w", k.name, o.namespace.Value(), o.name, err)
	}
	if own := string(b); own != k.emptyEncoding() {
		o.own, o.has = own, o.has|hasOwn
	}
	return o, nil
}

// representable reports whether t survives being held in Unix nanoseconds (years 1678 to 2262).
func representable(t metav1.Time) bool {
	return metav1.Unix(0, t.UnixNano()).Time.Equal(t.Time)
}

// Unpack decodes o into the typed object it holds, a new one on every call. Its error says that o
// holds an encoding this package did not write.
func (o *Object) Unpack() (runtime.Object, error) {
	m, err := o.unpack()
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (o *Object) unpack() (message, error) {
	m := o.kind.newObject()
	if o.has&hasOwn != 0 {
		if err := m.Unmarshal(bytesOf(o.own)); err != nil {
			return nil, fmt.Errorf("compact: decoding %s %s/%s: %w", o.kind.name, o.namespace.Value(), o.name, err)
		}
	}
	if o.kind.split != nil {
		var shared [parts]*corev1.Pod
		for i := range shared {
			if o.has&(hasShared<<i) == 0 {
				shared[i] = noPart
				continue
			}
			shared[i] = &corev1.Pod{}
			if err := shared[i].Unmarshal(bytesOf(o.shared[i].Value())); err != nil {
				return nil, fmt.Errorf("compact: decoding %s %s/%s: %w", o.kind.name, o.namespace.Value(), o.name, err)
			}
		}
		o.kind.join(m, shared)
	}
	m.SetName(o.name)
	m.SetNamespace(o.namespace.Value())
	m.SetGeneration(o.generation)
	if o.has&hasUID != 0 {
		m.SetUID(types.UID(o.uid.String()))
	}
	if o.has&hasResourceVersion != 0 {
		m.SetResourceVersion(strconv.FormatUint(o.resourceVersion, 10))
	}
	if o.has&hasCreated != 0 {
		m.SetCreationTimestamp(metav1.Unix(0, o.created))
	}
	return m, nil
}

// noPart stands for a shared part an object does not have, so that decoding allocates none: join
// only reads the parts it is given.
var noPart = &corev1.Pod{}

// bytesOf views s as bytes without copying; the generated Unmarshal methods only read their input
// and copy what they keep.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Kind returns the API kind o holds, such as "Pod".
func (o *Object) Kind() string { return o.kind.name }

// DeepCopyObject returns the typed object o holds (a *corev1.Pod for a pod), decoded anew:
// controller-runtime's cache calls it on every object that Get and List return, so its readers get
// the typed objects they ask for. Should decoding fail, it returns a copy of o, which the cache's
// Get and List then refuse with an error naming both types.
func (o *Object) DeepCopyObject() runtime.Object {
	if m, err := o.unpack(); err == nil {
		return m
	}
	c := *o
	return &c
}

// GetObjectKind returns no kind: the cache sets the kind on the typed objects it returns.
func (o *Object) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// typed decodes o for a getter of a field held in its encoding; nil when that fails.
func (o *Object) typed() message {
	m, err := o.unpack()
	if err != nil {
		return nil
	}
	return m
}

// edit changes a field held in o's encoding: it decodes o, applies set and packs it again. Should
// that fail, o is left as it was.
func (o *Object) edit(set func(metav1.Object)) {
	m, err := o.unpack()
	if err != nil {
		return
	}
	set(m)
	if packed, err := Pack(m); err == nil {
		*o = *packed
	}
}

// The identity fields: held as values, read and set without decoding (but for the deletion
// timestamp of an object that has an own part).

func (o *Object) GetName() string          { return o.name }
func (o *Object) SetName(name string)      { o.name = name }
func (o *Object) GetNamespace() string     { return o.namespace.Value() }
func (o *Object) SetNamespace(ns string)   { o.namespace = unique.Make(ns) }
func (o *Object) GetGeneration() int64     { return o.generation }
func (o *Object) SetGeneration(g int64)    { o.generation = g }
func (o *Object) GetSelfLink() string      { return "" }
func (o *Object) SetSelfLink(string)       {}
func (o *Object) GetGenerateName() string  { return o.metaOf().GenerateName }
func (o *Object) SetGenerateName(n string) { o.edit(func(m metav1.Object) { m.SetGenerateName(n) }) }

func (o *Object) GetUID() types.UID {
	if o.has&hasUID != 0 {
		return types.UID(o.uid.String())
	}
	return o.metaOf().UID
}

func (o *Object) SetUID(uid types.UID) { o.edit(func(m metav1.Object) { m.SetUID(uid) }) }

func (o *Object) GetResourceVersion() string {
	if o.has&hasResourceVersion != 0 {
		return strconv.FormatUint(o.resourceVersion, 10)
	}
	return o.metaOf().ResourceVersion
}

func (o *Object) SetResourceVersion(rv string) {
	o.edit(func(m metav1.Object) { m.SetResourceVersion(rv) })
}

func (o *Object) GetCreationTimestamp() metav1.Time {
	if o.has&hasCreated != 0 {
		return metav1.Unix(0, o.created)
	}
	return o.metaOf().CreationTimestamp
}

func (o *Object) SetCreationTimestamp(t metav1.Time) {
	o.edit(func(m metav1.Object) { m.SetCreationTimestamp(t) })
}

func (o *Object) GetDeletionTimestamp() *metav1.Time {
	if o.has&hasOwn == 0 {
		return nil // held in the own part, which is empty
	}
	return o.metaOf().DeletionTimestamp
}

func (o *Object) SetDeletionTimestamp(t *metav1.Time) {
	o.edit(func(m metav1.Object) { m.SetDeletionTimestamp(t) })
}

// metaOf decodes o's metadata; empty when decoding fails.
func (o *Object) metaOf() *metav1.ObjectMeta {
	if m := o.typed(); m != nil {
		if a, ok := m.(metav1.ObjectMetaAccessor); ok {
			if meta, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
				return meta
			}
		}
	}
	return &metav1.ObjectMeta{}
}

// The other metadata: held in the encoding, decoded to read, re-encoded to set.

func (o *Object) GetDeletionGracePeriodSeconds() *int64 { return o.metaOf().DeletionGracePeriodSeconds }
func (o *Object) SetDeletionGracePeriodSeconds(s *int64) {
	o.edit(func(m metav1.Object) { m.SetDeletionGracePeriodSeconds(s) })
}
func (o *Object) GetLabels() map[string]string { return o.metaOf().Labels }
func (o *Object) SetLabels(l map[string]string) {
	o.edit(func(m metav1.Object) { m.SetLabels(l) })
}
func (o *Object) GetAnnotations() map[string]string { return o.metaOf().Annotations }
func (o *Object) SetAnnotations(a map[string]string) {
	o.edit(func(m metav1.Object) { m.SetAnnotations(a) })
}
func (o *Object) GetFinalizers() []string { return o.metaOf().Finalizers }
func (o *Object) SetFinalizers(f []string) {
	o.edit(func(m metav1.Object) { m.SetFinalizers(f) })
}
func (o *Object) GetOwnerReferences() []metav1.OwnerReference { return o.metaOf().OwnerReferences }
func (o *Object) SetOwnerReferences(r []metav1.OwnerReference) {
	o.edit(func(m metav1.Object) { m.SetOwnerReferences(r) })
}
func (o *Object) GetManagedFields() []metav1.ManagedFieldsEntry { return o.metaOf().ManagedFields }
func (o *Object) SetManagedFields(f []metav1.ManagedFieldsEntry) {
	o.edit(func(m metav1.Object) { m.SetManagedFields(f) })
}
