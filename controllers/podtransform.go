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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
)

// SlimPod is the cache transform for Pods: it keeps only what the decision reads of a live pod
// and drops the rest (managedFields, the status, volumes, resources, commands, security
// contexts, scheduling), so that the cache of a cluster's pods costs a fraction of their size.
// It keeps the identity and metadata (name, namespace, UID, resourceVersion, labels, annotations,
// owner references, creation and deletion timestamps), spec.hostNetwork, and of every container
// and init container its name, image (the Istio version), ports (named probe ports), probes and
// restartPolicy (native sidecars); of istio-proxy also the ISTIO_KUBE_APP_PROBERS environment
// entries (the only ones the decision reads, in istio.KubeAppProbers; Istio's injector sets some
// thirty). Any other object passes unchanged. TestSlimPodKeepsEveryDecision checks that every mesh
// package answers the same on slim pods as on whole ones.
func SlimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: slimMeta(&pod.ObjectMeta),
		Spec:       slimPodSpec(&pod.Spec),
	}
	return slim, nil
}

// slimMeta keeps of an object's metadata its identity (name, namespace, UID, resourceVersion,
// generation), labels, annotations, owner references and creation and deletion timestamps.
func slimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, Labels: m.Labels, Annotations: m.Annotations,
		OwnerReferences: m.OwnerReferences, CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
	}
}

// slimPodSpec keeps of a pod's (or a pod template's) spec what SlimPod says: hostNetwork and the
// containers and init containers cut by slimContainers.
func slimPodSpec(spec *corev1.PodSpec) corev1.PodSpec {
	return corev1.PodSpec{
		HostNetwork:    spec.HostNetwork,
		Containers:     slimContainers(spec.Containers),
		InitContainers: slimContainers(spec.InitContainers),
	}
}

// slimContainers keeps of each container what SlimPod says.
func slimContainers(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{
			Name: c.Name, Image: c.Image, Ports: c.Ports, RestartPolicy: c.RestartPolicy,
			ReadinessProbe: c.ReadinessProbe, LivenessProbe: c.LivenessProbe, StartupProbe: c.StartupProbe,
		}
		if c.Name == istiomesh.ProxyContainerName {
			out[i].Env = probersEnv(c.Env)
		}
	}
	return out
}

// probersEnv keeps the ISTIO_KUBE_APP_PROBERS entries of a container's environment, in order.
func probersEnv(env []corev1.EnvVar) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, e := range env {
		if e.Name == istiomesh.KubeAppProbersEnv {
			out = append(out, e)
		}
	}
	return out
}
