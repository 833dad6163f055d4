package plan

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/internal/mtls"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// need says whether one probe needs redirecting under the policy, and why.
type need struct {
	needed  bool
	reason  v1alpha1.StatusReason
	message string
}

// needOf decides whether probe p needs redirecting under spec, given its workload's mTLS modes.
func needOf(spec v1alpha1.ProbeRedirectPolicySpec, p probes.Probe, modes mtls.Workload) need {
	if p.Handler == v1alpha1.HandlerExec {
		return need{reason: v1alpha1.StatusReasonExecProbe, message: "exec probes run inside the container; the sidecar does not intercept them"}
	}
	if !slices.Contains(probeTypes(spec), v1alpha1.ProbeType(p.Handler)) {
		return need{reason: v1alpha1.StatusReasonProbeTypeNotSelected, message: fmt.Sprintf("spec.probeTypes does not include %s", p.Handler)}
	}
	if spec.Trigger == v1alpha1.TriggerAlways {
		return need{needed: true, reason: v1alpha1.StatusReasonTriggerAlways, message: "spec.trigger is Always"}
	}
	if p.Handler == v1alpha1.HandlerTCP {
		return need{needed: true, reason: v1alpha1.StatusReasonTCPPassesFalsely, message: "the sidecar accepts every TCP connection, so the probe passes even when the app is down"}
	}
	mode := portMode(p, modes)
	if mode == v1alpha1.MTLSStrict {
		return need{needed: true, reason: v1alpha1.StatusReasonStrictMTLS, message: fmt.Sprintf("STRICT mTLS on port %d rejects the kubelet, which has no mesh certificate", p.Port)}
	}
	return need{reason: v1alpha1.StatusReasonPortNotStrict, message: fmt.Sprintf("mTLS mode on port %d is %s, so the kubelet reaches the app", p.Port, mode)}
}

func portMode(p probes.Probe, modes mtls.Workload) v1alpha1.MTLSMode {
	if p.Port > 0 {
		return modes.ForPort(p.Port)
	}
	return modes.Mode
}

// probeStatuses lists every probe with its need, before the workload's verdict refines the states.
func probeStatuses(analysed []probes.Probe, statusPort int32, modes mtls.Workload, needs []need) []v1alpha1.ProbeStatus {
	out := make([]v1alpha1.ProbeStatus, len(analysed))
	for i, p := range analysed {
		out[i] = v1alpha1.ProbeStatus{
			Container: p.Container,
			Kind:      p.Kind,
			Handler:   p.Handler,
			Original:  truncate(p.Original, v1alpha1.MaxTargetLength),
			State:     v1alpha1.ProbeNotNeeded,
			Reason:    needs[i].reason,
			Message:   needs[i].message,
		}
		if p.Handler != v1alpha1.HandlerExec {
			out[i].MTLSMode = portMode(p, modes)
			out[i].Rewritten = truncate(istiomesh.RewrittenTarget(p, statusPort), v1alpha1.MaxTargetLength)
		}
	}
	return out
}

// podsOfWorkload are a workload's live pods, split by whether they were made from an annotated
// template.
type podsOfWorkload struct {
	current, old []*corev1.Pod
}

// livePods returns the workload's pods that are not being deleted.
func livePods(in Input, ref Ref) podsOfWorkload {
	var pods podsOfWorkload
	for _, pod := range in.Pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if owner, ok := WorkloadOfPod(pod); !ok || owner != ref {
			continue
		}
		// (The pods are sorted by name below, so that no answer depends on the cache's order.)
		if setting, _ := istiomesh.ReadRewriteSetting(pod.Annotations); setting == istiomesh.RewriteEnabled {
			pods.current = append(pods.current, pod)
		} else {
			pods.old = append(pods.old, pod)
		}
	}
	byName := func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(pods.current, byName)
	slices.SortFunc(pods.old, byName)
	return pods
}

// verifyOnPods sets the state of each redirectable probe in statuses from the workload's live
// pods and returns the worst state among them (Rewritten, PendingRollout or NotRewritten).
// verifications are verifyPods' results for pods.current.
func verifyOnPods(statuses []v1alpha1.ProbeStatus, analysed []probes.Probe, pods podsOfWorkload, verifications []probes.PodVerification, rolledOut bool, istio istiomesh.IstioVersion) v1alpha1.ProbeState {
	worst := v1alpha1.ProbeRewritten
	for i, p := range analysed {
		if p.Handler == v1alpha1.HandlerExec {
			continue
		}
		ps := &statuses[i]
		switch {
		case len(pods.old) > 0:
			setProbe(ps, v1alpha1.ProbePendingRollout, v1alpha1.StatusReasonPodsOnOldTemplate,
				fmt.Sprintf("%d of %d pods predate the annotation", len(pods.old), len(pods.old)+len(pods.current)))
		case len(pods.current) == 0 && !rolledOut:
			setProbe(ps, v1alpha1.ProbePendingRollout, v1alpha1.StatusReasonRolloutInProgress, "no pod from the annotated template yet")
		case len(pods.current) == 0:
			setProbe(ps, v1alpha1.ProbeRewritten, v1alpha1.StatusReasonTemplateAnnotated, "no pods to verify; new pods get the rewrite")
		default:
			setProbe(ps, v1alpha1.ProbeRewritten, v1alpha1.StatusReasonVerifiedOnPods, fmt.Sprintf("verified on %d pod(s)", len(pods.current)))
			for j, v := range verifications {
				pv, ok := v.Probes[p.Key()]
				if ok && pv.Rewritten {
					continue
				}
				reason := v1alpha1.StatusReasonProbeNotRewritten
				if ok {
					reason = pv.Reason
				}
				message := fmt.Sprintf("pod %s: probe not rewritten (%s)", pods.current[j].Name, reason)
				if f, tooOld := rewriteFeature(p.Handler); reason == v1alpha1.StatusReasonProbeNotRewritten && tooOld && !istio.Has(f) {
					reason = v1alpha1.StatusReasonRewriteNotInThisIstio
					message = fmt.Sprintf("pod %s: Istio %s (%s) does not %s; that came in Istio %s (%s)", pods.current[j].Name, istio, istio.Source, f.Name, f.Since, f.Source)
				}
				setProbe(ps, v1alpha1.ProbeNotRewritten, reason, message)
				break
			}
		}
		worst = worse(worst, ps.State)
	}
	return worst
}

// worse returns the worse of two verified probe states.
func worse(a, b v1alpha1.ProbeState) v1alpha1.ProbeState {
	rank := map[v1alpha1.ProbeState]int{v1alpha1.ProbeRewritten: 0, v1alpha1.ProbePendingRollout: 1, v1alpha1.ProbeNotRewritten: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// verifyPods checks each of the workload's current pods against Istio's rewrite, once for both
// verifyOnPods and liveOnlyProbes. meshStatusPort is the mesh default; a pod's own status-port
// annotation overrides it.
func verifyPods(pods podsOfWorkload, meshStatusPort int32) []probes.PodVerification {
	verifications := make([]probes.PodVerification, len(pods.current))
	for i, pod := range pods.current {
		port, _ := istiomesh.StatusPort(pod.Annotations, meshStatusPort)
		verifications[i] = istiomesh.VerifyPod(&pod.Spec, port)
	}
	return verifications
}

// liveProbes are the probes found on the live pods of a workload but not in its template.
type liveProbes struct {
	statuses []v1alpha1.ProbeStatus
	needs    []Need
	// worst is the worst of their states among Rewritten and NotRewritten (Rewritten for none).
	worst v1alpha1.ProbeState
	// unrewritten names the containers with a probe that needs redirecting and was not rewritten.
	unrewritten []string
}

// liveOnlyProbes lists the probes of containers that exist only on the workload's current live
// pods (added by another mutating webhook), each once, with whether it needs redirecting under
// spec and whether Istio rewrote it. Istio rewrites only the probes of containers present when its
// injector runs (istio/istio pkg/kube/inject/webhook.go, applyRewrite over the pod it was given),
// so a container added later keeps its original probe unless the injector is reinvoked.
func liveOnlyProbes(spec v1alpha1.ProbeRedirectPolicySpec, template []probes.Probe, pods podsOfWorkload, verifications []probes.PodVerification, meshStatusPort int32, modes mtls.Workload) liveProbes {
	out := liveProbes{worst: v1alpha1.ProbeRewritten}
	known := map[probes.Key]bool{}
	for _, p := range template {
		known[p.Key()] = true
	}
	// Each live-only probe, as the first pod (by name) that has it shows it, and the first pod
	// that has it unrewritten, if any: one such pod is enough for the probe to misreport there.
	type sighting struct {
		probe       probes.Probe
		rewritten   probes.ProbeVerification
		unrewritten *corev1.Pod
	}
	var order []probes.Key
	seen := map[probes.Key]*sighting{}
	for i, pod := range pods.current {
		port, _ := istiomesh.StatusPort(pod.Annotations, meshStatusPort)
		verification := verifications[i]
		for _, p := range istiomesh.Analyze(&pod.Spec, port) {
			if known[p.Key()] {
				continue
			}
			pv, verified := verification.Probes[p.Key()]
			sg, ok := seen[p.Key()]
			if !ok {
				sg = &sighting{probe: p}
				seen[p.Key()], order = sg, append(order, p.Key())
			}
			switch {
			case verified && pv.Rewritten:
				if sg.rewritten.Target == "" {
					sg.rewritten = pv
				}
			case p.Handler != v1alpha1.HandlerExec && sg.unrewritten == nil:
				sg.probe, sg.unrewritten = p, pod
			}
		}
	}
	for _, key := range order {
		sg := seen[key]
		p := sg.probe
		ps := v1alpha1.ProbeStatus{Container: p.Container, Kind: p.Kind, Handler: p.Handler,
			Original: truncate(p.Original, v1alpha1.MaxTargetLength), State: v1alpha1.ProbeNotNeeded}
		n := needOf(spec, p, modes)
		switch {
		case p.Handler == v1alpha1.HandlerExec:
			setProbe(&ps, v1alpha1.ProbeNotNeeded, n.reason, n.message)
		case sg.unrewritten == nil:
			// Istio was reinvoked after the other webhook (reinvocationPolicy IfNeeded).
			ps.Original = truncate(sg.rewritten.Original, v1alpha1.MaxTargetLength)
			ps.Rewritten = truncate(sg.rewritten.Target, v1alpha1.MaxTargetLength)
			setProbe(&ps, v1alpha1.ProbeRewritten, v1alpha1.StatusReasonVerifiedOnPods,
				fmt.Sprintf("container %q exists only on the live pods; its probe was rewritten on every one", p.Container))
		case n.needed:
			ps.MTLSMode = portMode(p, modes)
			setProbe(&ps, v1alpha1.ProbeNotRewritten, v1alpha1.StatusReasonAddedAfterInjection,
				fmt.Sprintf("container %q exists only on the live pods (pod %s): a mutating webhook added it after Istio's injector ran, so its probe was not rewritten and %s; "+
					"set Istio's sidecarInjectorWebhook.reinvocationPolicy to IfNeeded", p.Container, sg.unrewritten.Name, n.message))
			out.needs = append(out.needs, Need{Reason: n.reason, Message: n.message})
			out.statuses = append(out.statuses, ps)
			out.worst = v1alpha1.ProbeNotRewritten
			if !slices.Contains(out.unrewritten, p.Container) {
				out.unrewritten = append(out.unrewritten, p.Container)
			}
			continue
		default:
			ps.MTLSMode = portMode(p, modes)
			setProbe(&ps, v1alpha1.ProbeNotNeeded, n.reason, n.message)
		}
		// A rewritten probe is read back as its rewrite (an httpGet on the status port), so
		// its need is not known here.
		out.needs = append(out.needs, Need{})
		out.statuses = append(out.statuses, ps)
	}
	return out
}

// rewriteFeature names the Istio feature that rewrites probes of a handler, for TCP and gRPC.
func rewriteFeature(h v1alpha1.ProbeHandler) (istiomesh.Feature, bool) {
	switch h {
	case v1alpha1.HandlerTCP:
		return istiomesh.RewriteTCPProbes, true
	case v1alpha1.HandlerGRPC:
		return istiomesh.RewriteGRPCProbes, true
	}
	return istiomesh.Feature{}, false
}
