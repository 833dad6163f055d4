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

package v1alpha1

// Defaults and limits of the API. The kubebuilder markers on the types cannot name Go constants,
// so they repeat these numbers; TestMarkersMatchConstants reads the generated CRD and fails when
// the two disagree. Code that fills a default or bounds a list uses these constants.
const (
	// DefaultMaxConcurrent is spec.rollout.maxConcurrent when unset.
	DefaultMaxConcurrent int32 = 1
	// MaxConcurrentLimit is the largest spec.rollout.maxConcurrent admitted.
	MaxConcurrentLimit int32 = 50
	// DefaultProgressDeadlineSeconds is spec.rollout.progressDeadlineSeconds when unset (the same
	// 600 s as a Deployment's own default).
	DefaultProgressDeadlineSeconds int32 = 600
	// MinProgressDeadlineSeconds is the smallest spec.rollout.progressDeadlineSeconds admitted.
	MinProgressDeadlineSeconds int32 = 10
	// MaxProgressDeadlineSeconds is the largest spec.rollout.progressDeadlineSeconds admitted (a day).
	MaxProgressDeadlineSeconds int32 = 86400
	// DefaultPauseOnFailure is spec.rollout.pauseOnFailure when unset.
	DefaultPauseOnFailure = true
	// DefaultTrigger is spec.trigger when unset.
	DefaultTrigger = TriggerStrictMTLS
	// DefaultOnDelete is spec.onDelete when unset.
	DefaultOnDelete = DeletionPolicyKeep

	// MaxWorkloadEntries bounds status.workloads and status.rollouts; status.summary keeps the
	// exact totals.
	MaxWorkloadEntries = 100
	// MaxUnhealthyPodEntries bounds status.unhealthyPods.
	MaxUnhealthyPodEntries = 50
	// MaxProbeEntries bounds status.workloads[].probes.
	MaxProbeEntries = 64
	// MaxConditions bounds status.conditions.
	MaxConditions = 8
	// MaxMessageLength bounds every message in the status, in bytes.
	MaxMessageLength = 1024
	// MaxTargetLength bounds status.workloads[].probes[].original and .rewritten, in bytes.
	MaxTargetLength = 512
	// MaxReasonLength bounds every reason in the status, in bytes.
	MaxReasonLength = 64
	// MaxNameLength bounds every object name in the status (a DNS subdomain), in bytes.
	MaxNameLength = 253
)

// DefaultWorkloadKinds is spec.workloadKinds when unset: every kind the operator manages.
func DefaultWorkloadKinds() []WorkloadKind {
	return []WorkloadKind{KindDeployment, KindStatefulSet, KindDaemonSet}
}

// DefaultProbeTypes is spec.probeTypes when unset: every probe handler a mesh can redirect.
func DefaultProbeTypes() []ProbeType {
	return []ProbeType{ProbeTypeHTTP, ProbeTypeTCP, ProbeTypeGRPC}
}
