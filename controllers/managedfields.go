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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
)

// redirectAnnotationPaths are the field paths of every mesh's redirect annotation on a workload's
// pod template.
var redirectAnnotationPaths = []fieldpath.Path{
	fieldpath.MakePathOrDie("spec", "template", "metadata", "annotations", istiomesh.RewriteAnnotation),
	fieldpath.MakePathOrDie("spec", "template", "metadata", "annotations", kumamesh.ProbeProxyPortAnnotation),
}

// managesRewriteAnnotation reports whether fieldManager owns a redirect annotation of a workload's
// pod template, according to the object's managedFields. The FieldsV1 documents are read with
// structured-merge-diff's own parser, the one the API server writes them with; an entry that does
// not parse owns nothing.
func managesRewriteAnnotation(obj metav1.Object, fieldManager string) bool {
	return ownedRedirectAnnotations(obj, fieldManager) != nil
}

// ownedRedirectAnnotations returns, as a FieldsV1 document, the redirect annotations of
// redirectAnnotationPaths that fieldManager owns according to obj's managedFields; nil for none.
// The same annotations give the same document, so SlimWorkload keeps this one entry in place of
// the operator's own, whose timestamps and other fields differ in every workload.
func ownedRedirectAnnotations(obj metav1.Object, fieldManager string) *metav1.FieldsV1 {
	owned := &fieldpath.Set{}
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager != fieldManager || entry.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(entry.FieldsV1.GetRawReader()); err != nil {
			continue
		}
		for _, path := range redirectAnnotationPaths {
			if set.Has(path) {
				owned.Insert(path)
			}
		}
	}
	if owned.Empty() {
		return nil
	}
	doc, err := owned.ToJSON()
	if err != nil {
		return nil
	}
	return metav1.NewFieldsV1(string(doc))
}
