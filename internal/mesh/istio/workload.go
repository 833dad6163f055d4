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

package istio

import (
	"fmt"
	"slices"
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// View is Istio as seen from one namespace: the mesh.Mesh the decision asks about Istio's
// workloads. The controller fills it from what it observed.
type View struct {
	// Namespace is the namespace's name and NamespaceLabels its labels.
	Namespace       string
	NamespaceLabels map[string]string
	// Istio is the namespace's Istio version (NamespaceVersion); a workload's own live pods, when
	// they show one, decide for that workload.
	Istio IstioVersion
	// MTLS resolves PeerAuthentication modes; nil counts every port as PERMISSIVE.
	MTLS *Resolver
	// StatusPort is the mesh-wide default status port (DefaultStatusPort unless configured).
	StatusPort int32
}

var _ mesh.Mesh = &View{}

// Name returns v1alpha1.MeshIstio.
func (m *View) Name() v1alpha1.MeshName { return v1alpha1.MeshIstio }

// ProxyContainer returns istio-proxy.
func (m *View) ProxyContainer() string { return ProxyContainerName }

// FillStatus sets istioVersion to the namespace's Istio version ("unknown" when unknown).
func (m *View) FillStatus(status *v1alpha1.ProbeRedirectPolicyStatus) {
	status.IstioVersion = m.Istio.String()
}

// InjectsNamespace reports whether the namespace's labels select Istio's injection: the
// istio-injection=enabled label, or a non-empty istio.io/rev (Injection).
func (m *View) InjectsNamespace() bool {
	return m.NamespaceLabels[namespaceInjectionLabel] == "enabled" ||
		(m.NamespaceLabels[namespaceInjectionLabel] == "" && m.NamespaceLabels[label.IoIstioRev.Name] != "")
}

// NamespaceMode returns the namespace-level PeerAuthentication mode.
func (m *View) NamespaceMode() v1alpha1.MTLSMode { return m.resolver().NamespaceMode(m.Namespace) }

func (m *View) resolver() *Resolver {
	if m.MTLS == nil {
		return NewResolver("", nil)
	}
	return m.MTLS
}

// ReadRedirect reads RewriteAnnotation and the status port from annotations (ReadRewriteSetting,
// StatusPort).
func (m *View) ReadRedirect(annotations map[string]string) mesh.Redirect {
	setting, raw := ReadRewriteSetting(annotations)
	port, _ := StatusPort(annotations, m.StatusPort)
	r := mesh.Redirect{Annotation: RewriteAnnotation, Raw: raw, Port: port}
	switch setting {
	case RewriteEnabled:
		r.State = mesh.RedirectEnabled
	case RewriteDisabled:
		r.State = mesh.RedirectDisabled
	case RewriteInvalid:
		r.State = mesh.RedirectInvalid
	}
	return r
}

// RedirectAnnotation returns sidecar.istio.io/rewriteAppHTTPProbers: "true".
func (m *View) RedirectAnnotation(v1alpha1.ProbeRedirectPolicySpec) mesh.Annotation {
	return mesh.Annotation{Key: RewriteAnnotation, Value: "true"}
}

// AnalyzePod lists a live pod's probes as Analyze does, on the pod's own status port.
func (m *View) AnalyzePod(pod *corev1.Pod) []probes.Probe {
	port, _ := StatusPort(pod.Annotations, m.StatusPort)
	return Analyze(&pod.Spec, port)
}

// RewrittenTarget is RewrittenTarget on the status port.
func (m *View) RewrittenTarget(p probes.Probe, port int32) string { return RewrittenTarget(p, port) }

// Observe reads one workload as Istio's injector would treat it: ReadTemplate for the template's
// settings, the live pods for the Istio version and, when no version is known, for whether
// istio-proxy is there; Originals for the probes (a template injected before it was applied
// carries rewritten ones); MarkStartupBeforeProxy; and VerifyPod on every pod made with the rewrite
// annotation on.
func (m *View) Observe(template *corev1.PodTemplateSpec, pods []*corev1.Pod, _ v1alpha1.ProbeRedirectPolicySpec) mesh.Workload {
	w := mesh.Workload{Mesh: v1alpha1.MeshIstio, LateContainerAdvice: "set Istio's sidecarInjectorWebhook.reinvocationPolicy to IfNeeded"}
	for _, pod := range pods {
		if setting, _ := ReadRewriteSetting(pod.Annotations); setting == RewriteEnabled {
			w.Current = append(w.Current, pod)
		} else {
			w.Old = append(w.Old, pod)
		}
	}
	all := slices.Concat(w.Current, w.Old)
	istio := m.Istio
	if v := NewestOnPods(all); v.Known() {
		istio = v
	}
	settings := ReadTemplate(m.NamespaceLabels, template, m.StatusPort, istio)
	sidecarSeen, podsSeen := sidecarOnPods(all)
	if !istio.Known() && podsSeen {
		settings.Injected, settings.InjectionReason = sidecarSeen, v1alpha1.StatusReasonNoSidecarOnLivePods
		if sidecarSeen {
			settings.InjectionReason = v1alpha1.StatusReasonSidecarOnLivePods
		}
	}
	w.Modes = m.resolver().ForWorkload(m.Namespace, template.Labels)
	w.Probes, w.RewrittenInTemplate = Originals(&template.Spec, settings.StatusPort)
	if w.RewrittenInTemplate > 0 && !template.Spec.HostNetwork {
		settings.Injected = true
		w.Current, w.Old = all, nil
	}
	native := nativeSidecar(all, settings)
	if inTemplate, found := NativeSidecarOnPod(&template.Spec); found {
		native = inTemplate // injected before it was applied: the template says where istio-proxy is
	}
	MarkStartupBeforeProxy(w.Probes, native)

	w.Injected, w.InjectionReason = settings.Injected, settings.InjectionReason
	w.Claimed = m.claim(template, settings.Injected, sidecarSeen)
	w.Redirect = m.ReadRedirect(template.Annotations)
	w.Redirect.Port = settings.StatusPort
	w.Blocked = blocked(settings)
	if slices.ContainsFunc(settings.InjectionTemplates, isUnknownTemplate) {
		w.Refused = &mesh.Outcome{State: v1alpha1.WorkloadUnsupported, ProbeState: v1alpha1.ProbeUnsupported, Reason: v1alpha1.StatusReasonUnknownInjectionTemplate,
			Message: fmt.Sprintf("%s is %q, which names an injection template that is not Istio's own; the operator cannot tell whether it rewrites probes and does not annotate the workload",
				InjectionTemplatesAnnotation, strings.Join(settings.InjectionTemplates, ","))}
	}
	w.Verifications = make([]probes.PodVerification, len(w.Current))
	for i, pod := range w.Current {
		port, _ := StatusPort(pod.Annotations, m.StatusPort)
		w.Verifications[i] = VerifyPod(&pod.Spec, port)
		explainMissingFeature(w.Verifications[i], w.Probes, istio)
	}
	return w
}

// claim says how strongly the workload belongs to Istio: istio-proxy on its live pods, Istio's
// injection rules, or only Istio's injection labels.
func (m *View) claim(template *corev1.PodTemplateSpec, injected, sidecarSeen bool) mesh.Claim {
	switch {
	case sidecarSeen:
		return mesh.ClaimSidecarOnPods
	case injected:
		return mesh.ClaimInjected
	}
	_, nsInjection := m.NamespaceLabels[namespaceInjectionLabel]
	_, nsRevision := m.NamespaceLabels[label.IoIstioRev.Name]
	_, podInjection := template.Labels[label.SidecarInject.Name]
	_, podAnnotation := template.Annotations[annotation.SidecarInject.Name]
	if nsInjection || nsRevision || podInjection || podAnnotation {
		return mesh.ClaimMentioned
	}
	return mesh.ClaimNone
}

// blocked returns Istio's reasons to leave a workload alone whatever its probes need, in the order
// they are reported: a rewrite annotation Istio cannot read (only when a probe needs the rewrite),
// a status port that is not a number, and the proxyless gRPC templates.
func blocked(s Template) []mesh.Outcome {
	var out []mesh.Outcome
	if s.Rewrite == RewriteInvalid {
		out = append(out, mesh.Outcome{State: v1alpha1.WorkloadUnsupported, ProbeState: v1alpha1.ProbeUnsupported, Reason: v1alpha1.StatusReasonInvalidRewriteAnnotation, IfNeeded: true,
			Message: fmt.Sprintf("%s is %q, which is not a boolean: Istio ignores it and uses the mesh default; the operator does not overwrite it", RewriteAnnotation, s.RewriteRaw)})
	}
	if s.StatusPortErr != nil {
		out = append(out, mesh.Outcome{State: v1alpha1.WorkloadUnsupported, ProbeState: v1alpha1.ProbeUnsupported, Reason: v1alpha1.StatusReasonInvalidStatusPort,
			Message: s.StatusPortErr.Error()})
	}
	if slices.ContainsFunc(s.InjectionTemplates, isProxyless) {
		out = append(out, mesh.Outcome{State: v1alpha1.WorkloadNotInMesh, ProbeState: v1alpha1.ProbeNotInMesh, Reason: v1alpha1.StatusReasonProxylessTemplate,
			Message: fmt.Sprintf("%s is %q: Istio's proxyless gRPC template adds no Envoy, so nothing intercepts the kubelet's probes, and it turns the probe rewrite off itself",
				InjectionTemplatesAnnotation, strings.Join(s.InjectionTemplates, ","))})
	}
	return out
}

// explainMissingFeature replaces, for TCP and gRPC probes that were not rewritten, the plain
// reason with StatusReasonRewriteNotInThisIstio when the pod's Istio predates that rewrite.
func explainMissingFeature(v probes.PodVerification, analysed []probes.Probe, istio IstioVersion) {
	for _, p := range analysed {
		f, tooOld := rewriteFeature(p.Handler)
		pv, ok := v.Probes[p.Key()]
		if !ok || !tooOld || pv.Reason != v1alpha1.StatusReasonProbeNotRewritten || istio.Has(f) {
			continue
		}
		pv.Reason = v1alpha1.StatusReasonRewriteNotInThisIstio
		pv.Message = fmt.Sprintf("Istio %s (%s) does not %s; that came in Istio %s (%s)", istio, istio.Source, f.Name, f.Since, f.Source)
		v.Probes[p.Key()] = pv
	}
}

// rewriteFeature returns the Istio feature that rewrites probes of handler h, ok false for HTTP
// (rewritten by every supported Istio) and exec (never rewritten).
func rewriteFeature(h v1alpha1.ProbeHandler) (Feature, bool) {
	switch h {
	case v1alpha1.HandlerTCP:
		return RewriteTCPProbes, true
	case v1alpha1.HandlerGRPC:
		return RewriteGRPCProbes, true
	}
	return Feature{}, false
}

// nativeSidecar says whether istio-proxy runs as a native sidecar: as the live pods show, else as
// the template's settings say.
func nativeSidecar(pods []*corev1.Pod, settings Template) bool {
	for _, pod := range pods {
		if native, found := NativeSidecarOnPod(&pod.Spec); found {
			return native
		}
	}
	return settings.NativeSidecar
}

// sidecarOnPods reports whether any live pod carries istio-proxy (injected), and whether there
// are live pods at all (found).
func sidecarOnPods(pods []*corev1.Pod) (injected, found bool) {
	for _, pod := range pods {
		found = true
		if _, has := NativeSidecarOnPod(&pod.Spec); has {
			return true, true
		}
	}
	return false, found
}

func isProxyless(template string) bool { return slices.Contains(ProxylessTemplates, template) }

func isUnknownTemplate(template string) bool {
	return !isProxyless(template) && !slices.Contains(ProbeRewritingTemplates, template)
}
