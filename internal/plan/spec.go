package plan

import (
	"time"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Spec accessors with the API defaults (v1alpha1's Default* constants), for objects that bypassed
// the API server's defaulting.

func workloadKinds(s v1alpha1.ProbeRedirectPolicySpec) []v1alpha1.WorkloadKind {
	if len(s.WorkloadKinds) == 0 {
		return v1alpha1.DefaultWorkloadKinds()
	}
	return s.WorkloadKinds
}

func probeTypes(s v1alpha1.ProbeRedirectPolicySpec) []v1alpha1.ProbeType {
	if len(s.ProbeTypes) == 0 {
		return v1alpha1.DefaultProbeTypes()
	}
	return s.ProbeTypes
}

func maxConcurrent(s v1alpha1.ProbeRedirectPolicySpec) int32 {
	if s.Rollout.MaxConcurrent < 1 {
		return v1alpha1.DefaultMaxConcurrent
	}
	return s.Rollout.MaxConcurrent
}

// ProgressDeadline is how long one workload's rollout may take before it counts as failed:
// spec.rollout.progressDeadlineSeconds, or its default.
func ProgressDeadline(s v1alpha1.ProbeRedirectPolicySpec) time.Duration {
	seconds := s.Rollout.ProgressDeadlineSeconds
	if seconds < 1 {
		seconds = v1alpha1.DefaultProgressDeadlineSeconds
	}
	return time.Duration(seconds) * time.Second
}

func suspended(s v1alpha1.ProbeRedirectPolicySpec) bool {
	return s.Suspend != nil && *s.Suspend
}

func pauseOnFailure(s v1alpha1.ProbeRedirectPolicySpec) bool {
	if s.Rollout.PauseOnFailure == nil {
		return v1alpha1.DefaultPauseOnFailure
	}
	return *s.Rollout.PauseOnFailure
}

// truncate cuts s to at most n bytes on a UTF-8 boundary, ending in "..." when cut.
func truncate[S ~string](s S, n int) S {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

// bounded returns at most n items of list, and nil for an empty list.
func bounded[T any](list []T, n int) []T {
	if len(list) == 0 {
		return nil
	}
	return list[:min(len(list), n)]
}
