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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SlimWorkload is the cache transform for Deployments, StatefulSets and DaemonSets: it keeps what
// the decision, the rollout judgement and the Istio version read, and drops the rest, so that
// the cache of a cluster's workloads costs a fraction of their size. Kept: the identity and
// metadata (name, namespace, UID, resourceVersion, generation, labels, owner references, creation
// and deletion timestamps), the annotations except kubectl's last-applied-configuration (a copy
// of the whole object), the managedFields entries of FieldOwner only (managesRewriteAnnotation
// reads no other), spec.replicas, the selector, the update strategy and paused, the pod
// template's labels and annotations and its spec cut as SlimPod cuts a pod's, and the whole status
// (the rollout's progress). Any other object passes unchanged. TestSlimWorkloadKeepsEveryDecision checks that the decision and the rollout
// progress are the same on slim workloads as on whole ones.
func SlimWorkload(obj any) (any, error) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &appsv1.Deployment{TypeMeta: w.TypeMeta, ObjectMeta: slimWorkloadMeta(&w.ObjectMeta),
			Spec: appsv1.DeploymentSpec{Replicas: w.Spec.Replicas, Selector: w.Spec.Selector, Paused: w.Spec.Paused,
				Strategy: w.Spec.Strategy, Template: slimTemplate(&w.Spec.Template)},
			Status: slimDeploymentStatus(w.Status)}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{TypeMeta: w.TypeMeta, ObjectMeta: slimWorkloadMeta(&w.ObjectMeta),
			Spec: appsv1.StatefulSetSpec{Replicas: w.Spec.Replicas, Selector: w.Spec.Selector,
				UpdateStrategy: w.Spec.UpdateStrategy, Template: slimTemplate(&w.Spec.Template)},
			Status: slimStatefulSetStatus(w.Status)}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{TypeMeta: w.TypeMeta, ObjectMeta: slimWorkloadMeta(&w.ObjectMeta),
			Spec: appsv1.DaemonSetSpec{Selector: w.Spec.Selector, UpdateStrategy: w.Spec.UpdateStrategy,
				Template: slimTemplate(&w.Spec.Template)},
			Status: slimDaemonSetStatus(w.Status)}, nil
	}
	return obj, nil
}

// slimDeploymentStatus keeps the status but, of its conditions, only the type, status and reason:
// the rollout judgement (rollout.DeploymentProgress, kubectl's rules) reads the Progressing
// condition's reason, and nothing reads the messages and times, which differ in every workload.
func slimDeploymentStatus(s appsv1.DeploymentStatus) appsv1.DeploymentStatus {
	s.Conditions = slimConditions(s.Conditions, func(c appsv1.DeploymentCondition) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: c.Type, Status: c.Status, Reason: c.Reason}
	})
	return s
}

// slimStatefulSetStatus and slimDaemonSetStatus do what slimDeploymentStatus does.
func slimStatefulSetStatus(s appsv1.StatefulSetStatus) appsv1.StatefulSetStatus {
	s.Conditions = slimConditions(s.Conditions, func(c appsv1.StatefulSetCondition) appsv1.StatefulSetCondition {
		return appsv1.StatefulSetCondition{Type: c.Type, Status: c.Status, Reason: c.Reason}
	})
	return s
}

func slimDaemonSetStatus(s appsv1.DaemonSetStatus) appsv1.DaemonSetStatus {
	s.Conditions = slimConditions(s.Conditions, func(c appsv1.DaemonSetCondition) appsv1.DaemonSetCondition {
		return appsv1.DaemonSetCondition{Type: c.Type, Status: c.Status, Reason: c.Reason}
	})
	return s
}

func slimConditions[C any](in []C, slim func(C) C) []C {
	if in == nil {
		return nil
	}
	out := make([]C, len(in))
	for i, c := range in {
		out[i] = slim(c)
	}
	return out
}

// slimWorkloadMeta keeps of a workload's metadata what slimMeta keeps, without kubectl's
// last-applied-configuration annotation, and FieldOwner's managedFields entries.
func slimWorkloadMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := slimMeta(m)
	if _, ok := m.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		out.Annotations = make(map[string]string, len(m.Annotations)-1)
		for k, v := range m.Annotations {
			if k != corev1.LastAppliedConfigAnnotation {
				out.Annotations[k] = v
			}
		}
	}
	if owned := ownedRedirectAnnotations(m, FieldOwner); owned != nil {
		out.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
			FieldsType: "FieldsV1", FieldsV1: owned}}
	}
	return out
}

// slimTemplate keeps of a pod template its labels, its annotations and its spec cut by slimPodSpec.
func slimTemplate(t *corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: t.Labels, Annotations: t.Annotations},
		Spec:       slimPodSpec(&t.Spec),
	}
}
