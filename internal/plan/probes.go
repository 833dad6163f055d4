package plan

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	"github.com/proberedirect/probe-redirect-operator/internal/mesh"
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
			out[i].Rewritten = truncate(probes.RewrittenTarget(p, statusPort), v1alpha1.MaxTargetLength)
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
		if setting, _ := mesh.ReadRewriteSetting(pod.Annotations); setting == mesh.RewriteEnabled {
			pods.current = append(pods.current, pod)
		} else {
			pods.old = append(pods.old, pod)
		}
	}
	return pods
}

// verifyOnPods sets the state of each redirectable probe in statuses from the workload's live
// pods and returns the worst state among them (Rewritten, PendingRollout or NotRewritten).
// meshStatusPort is the mesh default; a pod's own status-port annotation overrides it.
func verifyOnPods(statuses []v1alpha1.ProbeStatus, analysed []probes.Probe, pods podsOfWorkload, meshStatusPort int32, rolledOut bool) v1alpha1.ProbeState {
	verifications := make([]probes.PodVerification, len(pods.current))
	for i, pod := range pods.current {
		port, _ := mesh.StatusPort(pod.Annotations, meshStatusPort)
		verifications[i] = probes.VerifyPod(&pod.Spec, port)
	}
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
				setProbe(ps, v1alpha1.ProbeNotRewritten, reason, fmt.Sprintf("pod %s: probe not rewritten (%s)", pods.current[j].Name, reason))
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
