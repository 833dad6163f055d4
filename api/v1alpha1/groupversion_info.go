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

// Package v1alpha1 contains the ProbeRedirectPolicy API of the mesh.proberedirect.io group.
// +kubebuilder:object:generate=true
// +groupName=mesh.proberedirect.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "mesh.proberedirect.io", Version: "v1alpha1"}

	// SchemeBuilder adds the types of this group-version to a scheme. It is apimachinery's own
	// builder, so importing the API pulls in no controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers ProbeRedirectPolicy and its list, and the meta types every group-version
// needs (ListOptions, DeleteOptions, ...).
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &ProbeRedirectPolicy{}, &ProbeRedirectPolicyList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
