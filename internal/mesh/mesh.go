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

// Package mesh is the one small interface through which the decision (internal/plan) asks a
// service mesh about a workload: does the mesh inject its pods, what does the pod template say
// about the probe redirect, which probes need it under the mesh's mTLS mode, and were the probes
// of the live pods really redirected. Each mesh is one package below this one (istio, kuma); plan
// never names a mesh, so a third mesh is one more package.
package mesh

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// Mesh is one service mesh as seen from one namespace. An implementation is built by the
// controller from what it observed (the namespace, the mesh's mTLS policies, its version) and is
// pure from then on: no method talks to the API server.
type Mesh interface {
	// Name is the mesh's name in the status (v1alpha1.MeshIstio, v1alpha1.MeshKuma).
	Name() v1alpha1.MeshName
	// ProxyContainer is the name of the sidecar container the mesh injects; the kubelet's
	// Unhealthy events about it never count against the app.
	ProxyContainer() string
	// NamespaceMode is the namespace-wide mTLS mode, for the policy's MTLS column.
	NamespaceMode() v1alpha1.MTLSMode
	// InjectsNamespace reports whether the namespace's labels turn the mesh's injection on.
	InjectsNamespace() bool
	// FillStatus sets the fields of a policy's status that belong to this mesh (Istio:
	// istioVersion).
	FillStatus(status *v1alpha1.ProbeRedirectPolicyStatus)
	// ReadRedirect reads what a pod template's (or pod's) annotations say about the probe redirect.
	ReadRedirect(annotations map[string]string) Redirect
	// RedirectAnnotation is the pod-template annotation the operator applies to turn the redirect
	// on under spec.
	RedirectAnnotation(spec v1alpha1.ProbeRedirectPolicySpec) Annotation
	// Observe reads one workload: its pod template and its live pods (every pod the workload owns,
	// not being deleted), under the policy spec.
	Observe(template *corev1.PodTemplateSpec, pods []*corev1.Pod, spec v1alpha1.ProbeRedirectPolicySpec) Workload
	// AnalyzePod lists a live pod's probes as they were before the mesh rewrote them (hazards
	// included), for containers that exist only on the live pods.
	AnalyzePod(pod *corev1.Pod) []probes.Probe
	// RewrittenTarget says what the kubelet probes once the mesh redirects p on port, in the format
	// of probes.Probe.Original; "" for a probe the mesh leaves alone.
	RewrittenTarget(p probes.Probe, port int32) string
}

// Annotation is one pod-template annotation.
type Annotation struct {
	Key, Value string
}

// RedirectState is what a template's annotation says about the probe redirect.
type RedirectState int

const (
	// RedirectUnset: the annotation is absent; the mesh's default decides.
	RedirectUnset RedirectState = iota
	// RedirectEnabled: the annotation turns the redirect on.
	RedirectEnabled
	// RedirectDisabled: the annotation turns the redirect off; the operator leaves it (OptedOut).
	RedirectDisabled
	// RedirectInvalid: the annotation has a value the mesh cannot read.
	RedirectInvalid
)

// Redirect is what a template's annotations say about the probe redirect.
type Redirect struct {
	State RedirectState
	// Annotation is the annotation's key; Raw its value, "" when absent.
	Annotation string
	Raw        string
	// Port is the port redirected probes target (Istio's status port, Kuma's probe proxy port).
	Port int32
}

// Outcome is a mesh's reason to leave a workload alone.
type Outcome struct {
	State      v1alpha1.WorkloadState
	ProbeState v1alpha1.ProbeState
	Reason     v1alpha1.StatusReason
	Message    string
	// IfNeeded is true when the outcome applies only if a probe of the workload needs the redirect.
	IfNeeded bool
}

// Workload is what a mesh says about one workload and its live pods.
type Workload struct {
	// Mesh is the mesh that said it.
	Mesh v1alpha1.MeshName
	// Injected is true when the mesh adds its sidecar to the workload's pods; InjectionReason
	// says why (or why not).
	Injected        bool
	InjectionReason v1alpha1.StatusReason
	// Claimed is how strongly the workload belongs to this mesh, for a namespace where several
	// meshes are installed: ClaimSidecarOnPods beats ClaimInjected beats ClaimMentioned.
	Claimed Claim
	// Redirect is what the template says about the redirect.
	Redirect Redirect
	// Blocked are the mesh's reasons to leave the workload alone before anything else (a setting
	// the operator cannot work with, a sidecar that intercepts nothing); the first that applies wins.
	Blocked []Outcome
	// Refused, when set, leaves the workload alone if a probe needs the redirect and the template
	// does not turn it on yet (the operator cannot tell what the mesh would do).
	Refused *Outcome
	// Probes are the template's probes as the app declares them, with the mesh's hazards.
	Probes []probes.Probe
	// RewrittenInTemplate counts probes the template itself already carries in rewritten form.
	RewrittenInTemplate int
	// Modes is the workload's effective mTLS mode, per port where the mesh says so.
	Modes Modes
	// Current are the live pods made with the redirect on, Old the others, each sorted by name.
	Current, Old []*corev1.Pod
	// Verifications hold, for each pod of Current, whether its probes were redirected; a
	// verification's Reason and Message explain a probe that was not.
	Verifications []probes.PodVerification
	// RedirectedByDefault is true when the template does not turn the redirect on but the mesh's
	// default does, so the live pods are redirected without any write.
	RedirectedByDefault bool
	// LateContainerAdvice tells a person what to change when a container added after injection
	// kept its probes unredirected.
	LateContainerAdvice string
}

// Claim is how strongly a workload belongs to a mesh.
type Claim int

const (
	// ClaimNone: nothing about the workload names this mesh.
	ClaimNone Claim = iota
	// ClaimMentioned: the mesh's injection labels are present, but say no.
	ClaimMentioned
	// ClaimInjected: the mesh's rules say it injects the workload's pods.
	ClaimInjected
	// ClaimSidecarOnPods: the live pods carry the mesh's sidecar, the best evidence.
	ClaimSidecarOnPods
)

// Choose returns the observation of the mesh that claims the workload most strongly, the first
// mesh on a tie; ok is false when meshes is empty. When another mesh injects the workload too
// (ClaimInjected or more), the observation is blocked first of all with
// StatusReasonInjectedByTwoMeshes: a pod with two sidecars passes its probes by neither redirect
// alone.
func Choose(meshes []Mesh, template *corev1.PodTemplateSpec, pods []*corev1.Pod, spec v1alpha1.ProbeRedirectPolicySpec) (m Mesh, w Workload, ok bool) {
	var injecting []string
	for _, candidate := range meshes {
		observed := candidate.Observe(template, pods, spec)
		if observed.Claimed >= ClaimInjected {
			injecting = append(injecting, string(candidate.Name()))
		}
		if !ok || observed.Claimed > w.Claimed {
			m, w, ok = candidate, observed, true
		}
	}
	if len(injecting) > 1 {
		w.Blocked = append([]Outcome{{State: v1alpha1.WorkloadUnsupported, ProbeState: v1alpha1.ProbeUnsupported, Reason: v1alpha1.StatusReasonInjectedByTwoMeshes,
			Message: fmt.Sprintf("%s all inject this workload's pods; with two sidecars neither mesh's redirect alone makes the probes pass: keep one mesh's injection labels", strings.Join(injecting, " and "))}},
			w.Blocked...)
	}
	return m, w, ok
}

// Modes is a workload's effective mutual TLS mode, as its mesh resolves it.
type Modes struct {
	// Mode is the workload-level effective mode.
	Mode v1alpha1.MTLSMode
	// PortModes holds the effective per-port overrides, keyed by container port (Istio: the chosen
	// workload policy's portLevelMtls; Kuma: a MeshTLS targeting one inbound). Nil when none.
	PortModes map[uint32]v1alpha1.MTLSMode
	// Source names the narrowest object that decided Mode ("namespace/name" of a policy, "Mesh
	// <name>"), or "" when the mesh's default applies.
	Source string
}

// ForPort returns the mode for a container port: its PortModes entry if present, else Mode.
func (w Modes) ForPort(port int32) v1alpha1.MTLSMode {
	// Guard the conversion: a negative port would wrap to a large uint32 and could hit a bogus key.
	if port > 0 {
		if m, ok := w.PortModes[uint32(port)]; ok {
			return m
		}
	}
	return w.Mode
}
