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

package kuma

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// View is Kuma (or Kong Mesh) as seen from one namespace: the mesh.Mesh the decision asks about
// Kuma's workloads. The controller fills it from what it observed.
type View struct {
	// Namespace is the namespace's name; NamespaceLabels and NamespaceAnnotations its metadata
	// (injection label, kuma.io/mesh).
	Namespace            string
	NamespaceLabels      map[string]string
	NamespaceAnnotations map[string]string
	// SystemNamespace is Kuma's system namespace (DefaultSystemNamespace unless configured).
	SystemNamespace string
	// Modes resolves the mTLS mode from the cluster's Meshes and MeshTLS policies; nil when Kuma's
	// CRDs are not served (every workload then reads DISABLE).
	Modes *Resolver
	// MeshesKnown is true when the cluster serves Kuma's Mesh kind, so that a Mesh missing from
	// Modes does not exist.
	MeshesKnown bool
}

var _ mesh.Mesh = &View{}

// Name returns v1alpha1.MeshKuma.
func (m *View) Name() v1alpha1.MeshName { return v1alpha1.MeshKuma }

// ProxyContainer returns kuma-sidecar.
func (m *View) ProxyContainer() string { return ProxyContainerName }

// FillStatus sets nothing: the policy's status has no Kuma-only field.
func (m *View) FillStatus(*v1alpha1.ProbeRedirectPolicyStatus) {}

// InjectsNamespace reports whether the namespace's kuma.io/sidecar-injection label selects Kuma's
// injection for a pod that says nothing (InjectionIn).
func (m *View) InjectsNamespace() bool {
	injected, _ := InjectionIn(m.systemNamespace(), m.NamespaceLabels, nil, nil)
	return injected
}

// NamespaceMode returns the mode of a pod without labels in the namespace's Mesh: the Mesh's
// backend mode, or a MeshTLS that targets the whole Mesh or namespace.
func (m *View) NamespaceMode() v1alpha1.MTLSMode {
	name := MeshOf(m.NamespaceLabels, m.NamespaceAnnotations, nil, nil)
	return m.resolver().ForWorkload(name, m.Namespace, nil).Mode
}

func (m *View) resolver() *Resolver {
	if m.Modes == nil {
		return NewResolver(nil, nil, m.systemNamespace())
	}
	return m.Modes
}

func (m *View) systemNamespace() string {
	if m.SystemNamespace == "" {
		return DefaultSystemNamespace
	}
	return m.SystemNamespace
}

// ReadRedirect reads kuma.io/application-probe-proxy-port (ReadProbeProxy): a port turns the
// redirect on, "0" turns it off.
func (m *View) ReadRedirect(annotations map[string]string) mesh.Redirect {
	pp := ReadProbeProxy(annotations)
	r := mesh.Redirect{Annotation: ProbeProxyPortAnnotation, Raw: pp.Raw, Port: pp.Port}
	switch pp.State {
	case ProbeProxyEnabled:
		r.State = mesh.RedirectEnabled
	case ProbeProxyDisabled:
		r.State = mesh.RedirectDisabled
	case ProbeProxyInvalid:
		r.State = mesh.RedirectInvalid
	}
	return r
}

// RedirectAnnotation returns kuma.io/application-probe-proxy-port set to the policy's
// spec.kuma.applicationProbeProxyPort (DefaultProbeProxyPort when 0).
func (m *View) RedirectAnnotation(spec v1alpha1.ProbeRedirectPolicySpec) mesh.Annotation {
	return mesh.Annotation{Key: ProbeProxyPortAnnotation, Value: strconv.Itoa(int(policyPort(spec)))}
}

func policyPort(spec v1alpha1.ProbeRedirectPolicySpec) int32 {
	if p := spec.Kuma.ApplicationProbeProxyPort; p > 0 {
		return p
	}
	return DefaultProbeProxyPort
}

// AnalyzePod lists a live pod's probes as Originals does, on the pod's own probe proxy port.
func (m *View) AnalyzePod(pod *corev1.Pod) []probes.Probe {
	analysed, _ := Originals(&pod.Spec, pod.Annotations, ProxyPortOf(pod.Annotations))
	return analysed
}

// RewrittenTarget is RewrittenTarget on the probe proxy port.
func (m *View) RewrittenTarget(p probes.Probe, port int32) string { return RewrittenTarget(p, port) }

// Observe reads one workload as Kuma's injector would treat it:
//   - injection by InjectionIn, which the live pods' kuma-sidecar confirms;
//   - the redirect by the template's kuma.io/application-probe-proxy-port (ReadRedirect);
//   - the probes by Originals on the port the redirect would use: the template's own, else the
//     policy's spec.kuma.applicationProbeProxyPort;
//   - the mTLS mode by the Resolver, in the Mesh MeshOf names;
//   - the live pods by VerifyPod. With the template's annotation set, the pods made with that same
//     value are current. Without it, Kuma's default decides: when every live pod carries
//     kuma-sidecar and every probe of every pod is redirected (Kuma's application probe proxy is on
//     by default from 2.9), the workload is RedirectedByDefault and nothing needs writing.
func (m *View) Observe(template *corev1.PodTemplateSpec, pods []*corev1.Pod, spec v1alpha1.ProbeRedirectPolicySpec) mesh.Workload {
	w := mesh.Workload{Mesh: v1alpha1.MeshKuma,
		LateContainerAdvice: "put the container in the pod template, or have Kuma's sidecar injector run after the webhook that adds it (reinvocationPolicy: IfNeeded)"}
	w.Injected, w.InjectionReason = InjectionIn(m.systemNamespace(), m.NamespaceLabels, template.Labels, template.Annotations)
	sidecarSeen := false
	for _, pod := range pods {
		if findProxy(&pod.Spec) != nil {
			sidecarSeen = true
		}
	}
	if sidecarSeen && !w.Injected {
		w.Injected, w.InjectionReason = true, v1alpha1.StatusReasonSidecarOnLivePods
	}
	w.Claimed = m.claim(template, w.Injected, sidecarSeen)

	w.Redirect = m.ReadRedirect(template.Annotations)
	port := w.Redirect.Port
	if w.Redirect.State != mesh.RedirectEnabled {
		port = policyPort(spec)
	}
	w.Redirect.Port = port
	meshName := MeshOf(m.NamespaceLabels, m.NamespaceAnnotations, template.Labels, template.Annotations)
	if _, gateway := template.Annotations[GatewayAnnotation]; gateway && w.Injected {
		w.Blocked = append(w.Blocked, mesh.Outcome{State: v1alpha1.WorkloadNotNeeded, ProbeState: v1alpha1.ProbeNotNeeded, Reason: v1alpha1.StatusReasonGatewayPod,
			Message: fmt.Sprintf("%s marks a delegated gateway: its incoming traffic bypasses kuma-sidecar, so the kubelet's probes reach the gateway directly (and Kuma turns the probe proxy off there)", GatewayAnnotation)})
	}
	if m.MeshesKnown && w.Injected && !m.resolver().HasMesh(meshName) {
		w.Blocked = append(w.Blocked, mesh.Outcome{State: v1alpha1.WorkloadUnsupported, ProbeState: v1alpha1.ProbeUnsupported, Reason: v1alpha1.StatusReasonMeshNotFound,
			Message: fmt.Sprintf("the pods join Kuma Mesh %q, which does not exist: Kuma's injector refuses them; create the Mesh or set %s", meshName, MeshLabel)})
	}
	if w.Redirect.State == mesh.RedirectInvalid {
		w.Blocked = append(w.Blocked, mesh.Outcome{State: v1alpha1.WorkloadUnsupported, ProbeState: v1alpha1.ProbeUnsupported,
			Reason: v1alpha1.StatusReasonInvalidProbeProxyPort, IfNeeded: true,
			Message: fmt.Sprintf("%s is %q, which is not a port number (1-65535); the operator does not overwrite it", ProbeProxyPortAnnotation, w.Redirect.Raw)})
	}
	w.Probes, w.RewrittenInTemplate = Originals(&template.Spec, template.Annotations, port)

	w.Modes = m.resolver().ForWorkload(meshName, m.Namespace, template.Labels)

	for _, pod := range pods {
		current := false
		switch w.Redirect.State {
		case mesh.RedirectEnabled:
			current = pod.Annotations[ProbeProxyPortAnnotation] == w.Redirect.Raw
		default:
			current = findProxy(&pod.Spec) != nil
		}
		if current {
			w.Current = append(w.Current, pod)
		} else {
			w.Old = append(w.Old, pod)
		}
	}
	w.Verifications = make([]probes.PodVerification, len(w.Current))
	for i, pod := range w.Current {
		w.Verifications[i] = VerifyPod(pod)
	}
	if w.Redirect.State == mesh.RedirectUnset {
		w.RedirectedByDefault = len(w.Current) > 0 && len(w.Old) == 0 && allRedirected(w.Verifications)
		if !w.RedirectedByDefault {
			// The pods say Kuma's default does not redirect them: they wait for the annotation.
			w.Current, w.Old, w.Verifications = nil, append(w.Current, w.Old...), nil
		}
	}
	return w
}

// claim says how strongly the workload belongs to Kuma: kuma-sidecar on its live pods, Kuma's
// injection rules, or only Kuma's injection label.
func (m *View) claim(template *corev1.PodTemplateSpec, injected, sidecarSeen bool) mesh.Claim {
	switch {
	case sidecarSeen:
		return mesh.ClaimSidecarOnPods
	case injected:
		return mesh.ClaimInjected
	}
	_, nsLabel := m.NamespaceLabels[SidecarInjectionLabel]
	_, podLabel := template.Labels[SidecarInjectionLabel]
	if nsLabel || podLabel {
		return mesh.ClaimMentioned
	}
	return mesh.ClaimNone
}

// allRedirected reports whether every probe of every verified pod was redirected.
func allRedirected(verifications []probes.PodVerification) bool {
	for _, v := range verifications {
		for _, pv := range v.Probes {
			if !pv.Rewritten {
				return false
			}
		}
	}
	return true
}
