package plan

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
	"github.com/proberedirect/probe-redirect-operator/internal/probes"
)

// need says whether one probe needs redirecting under the policy, and why.
type need struct {
	needed  bool
	reason  v1alpha1.StatusReason
	message string
}

// needOf decides whether probe p needs redirecting under spec, given its workload's mTLS modes.
func needOf(spec v1alpha1.ProbeRedirectPolicySpec, p probes.Probe, modes mesh.Modes) need {
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

func portMode(p probes.Probe, modes mesh.Modes) v1alpha1.MTLSMode {
	if p.Port > 0 {
		return modes.ForPort(p.Port)
	}
	return modes.Mode
}

// probeStatuses lists every probe with its need, before the workload's verdict refines the states.
func probeStatuses(m mesh.Mesh, analysed []probes.Probe, port int32, modes mesh.Modes, needs []need) []v1alpha1.ProbeStatus {
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
			out[i].Rewritten = truncate(m.RewrittenTarget(p, port), v1alpha1.MaxTargetLength)
		}
	}
	return out
}

// livePods returns the workload's pods that are not being deleted, sorted by name.
func livePods(in Input, ref Ref) []*corev1.Pod {
	var pods []*corev1.Pod
	for _, pod := range in.Pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if owner, ok := WorkloadOfPod(pod); ok && owner == ref {
			pods = append(pods, pod)
		}
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods
}

// verifyOnPods sets the state of each redirectable probe in statuses from the workload's live
// pods and returns the worst state among them (Rewritten, PendingRollout or NotRewritten).
// verifications are verifyPods' results for pods.current.
func verifyOnPods(statuses []v1alpha1.ProbeStatus, analysed []probes.Probe, w mesh.Workload, rolledOut bool) v1alpha1.ProbeState {
	worst := v1alpha1.ProbeRewritten
	current, old := w.Current, w.Old
	for i, p := range analysed {
		if p.Handler == v1alpha1.HandlerExec {
			continue
		}
		ps := &statuses[i]
		switch {
		case len(old) > 0:
			setProbe(ps, v1alpha1.ProbePendingRollout, v1alpha1.StatusReasonPodsOnOldTemplate,
				fmt.Sprintf("%d of %d pods predate the annotation", len(old), len(old)+len(current)))
		case len(current) == 0 && !rolledOut:
			setProbe(ps, v1alpha1.ProbePendingRollout, v1alpha1.StatusReasonRolloutInProgress, "no pod from the annotated template yet")
		case len(current) == 0:
			setProbe(ps, v1alpha1.ProbeRewritten, v1alpha1.StatusReasonTemplateAnnotated, "no pods to verify; new pods get the rewrite")
		default:
			setProbe(ps, v1alpha1.ProbeRewritten, v1alpha1.StatusReasonVerifiedOnPods, fmt.Sprintf("verified on %d pod(s)", len(current)))
			for j, v := range w.Verifications {
				pv, ok := v.Probes[p.Key()]
				if ok && pv.Rewritten {
					continue
				}
				reason := v1alpha1.StatusReasonProbeNotRewritten
				if ok {
					reason = pv.Reason
				}
				message := fmt.Sprintf("pod %s: probe not rewritten (%s)", current[j].Name, reason)
				if ok && pv.Message != "" {
					message = fmt.Sprintf("pod %s: %s", current[j].Name, pv.Message)
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
// spec and whether the mesh rewrote it. A mesh's injector rewrites only the probes of containers
// present when it runs (Istio: istio/istio pkg/kube/inject/webhook.go, applyRewrite over the pod it
// was given), so a container added later keeps its original probe unless the injector is reinvoked.
func liveOnlyProbes(spec v1alpha1.ProbeRedirectPolicySpec, m mesh.Mesh, template []probes.Probe, w mesh.Workload) liveProbes {
	modes := w.Modes
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
	for i, pod := range w.Current {
		verification := w.Verifications[i]
		for _, p := range m.AnalyzePod(pod) {
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
			// The mesh's injector was reinvoked after the other webhook.
			ps.Original = truncate(sg.rewritten.Original, v1alpha1.MaxTargetLength)
			ps.Rewritten = truncate(sg.rewritten.Target, v1alpha1.MaxTargetLength)
			setProbe(&ps, v1alpha1.ProbeRewritten, v1alpha1.StatusReasonVerifiedOnPods,
				fmt.Sprintf("container %q exists only on the live pods; its probe was rewritten on every one", p.Container))
		case n.needed:
			ps.MTLSMode = portMode(p, modes)
			setProbe(&ps, v1alpha1.ProbeNotRewritten, v1alpha1.StatusReasonAddedAfterInjection,
				fmt.Sprintf("container %q exists only on the live pods (pod %s): a mutating webhook added it after %s's injector ran, so its probe was not rewritten and %s; %s",
					p.Container, sg.unrewritten.Name, m.Name(), n.message, w.LateContainerAdvice))
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
