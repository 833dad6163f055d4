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

// ConditionType names one of the conditions the operator writes in status.conditions. Ready,
// Reconciling and Stalled follow the kstatus conventions, so Flux, Argo CD and `kubectl wait` read
// the policy without custom code (sigs.k8s.io/cli-utils pkg/kstatus/status, README "Conditions").
type ConditionType string

const (
	// ConditionReady is True when every selected workload that needs redirection has the annotation,
	// has rolled out, and its live pods' probes are verified as rewritten.
	ConditionReady ConditionType = "Ready"
	// ConditionReconciling is True while the operator is still annotating or rolling workloads
	// ("abnormal-true": kstatus reads it as InProgress).
	ConditionReconciling ConditionType = "Reconciling"
	// ConditionStalled is True when progress needs a person: a rollout missed its deadline, the
	// selector is invalid, policies overlap, or a probe cannot be redirected safely
	// ("abnormal-true": kstatus reads it as Failed).
	ConditionStalled ConditionType = "Stalled"
	// ConditionProbesHealthy is False when pods of selected workloads reported Unhealthy events within
	// the window. It never changes Ready.
	ConditionProbesHealthy ConditionType = "ProbesHealthy"
)

// OwnConditionTypes are the condition types the operator writes. Status is applied server-side
// with only these, so a condition another controller adds to the policy stays its own.
var OwnConditionTypes = []ConditionType{ConditionReady, ConditionReconciling, ConditionStalled, ConditionProbesHealthy}

// ConditionReason is the reason of one of the operator's conditions.
type ConditionReason string

const (
	// ReasonRedirected (Ready=True): all probes that need it are rewritten on live pods.
	ReasonRedirected ConditionReason = "Redirected"
	// ReasonNothingToRedirect (Ready=True): no selected workload needs redirection.
	ReasonNothingToRedirect ConditionReason = "NothingToRedirect"
	// ReasonRolloutInProgress (Ready=False, Reconciling=True): workloads are rolling or queued.
	ReasonRolloutInProgress ConditionReason = "RolloutInProgress"
	// ReasonRolloutFailed (Ready=False, Stalled=True): a rollout missed progressDeadlineSeconds.
	ReasonRolloutFailed ConditionReason = "RolloutFailed"
	// ReasonManualRolloutRequired (Ready=False): paused Deployments, OnDelete strategies, or pods
	// kept on the old template.
	ReasonManualRolloutRequired ConditionReason = "ManualRolloutRequired"
	// ReasonSuspended (Ready=False): spec.suspend is true and workloads still need redirection.
	ReasonSuspended ConditionReason = "Suspended"
	// ReasonInvalidSelector (Ready=False, Stalled=True): spec.selector cannot be parsed.
	ReasonInvalidSelector ConditionReason = "InvalidSelector"
	// ReasonConflict (Ready=False, Stalled=True): an older policy manages some selected workloads.
	ReasonConflict ConditionReason = "Conflict"
	// ReasonUnsupportedProbes (Ready=False, Stalled=True): redirecting would break some probes.
	ReasonUnsupportedProbes ConditionReason = "UnsupportedProbes"
	// ReasonObserveFailed (Ready=Unknown): the operator could not read what it needs.
	ReasonObserveFailed ConditionReason = "ObserveFailed"
	// ReasonApplyFailed (Ready=False, Reconciling=True): the operator could not annotate a workload.
	ReasonApplyFailed ConditionReason = "ApplyFailed"
	// ReasonRestoreFailed (Ready=False, Reconciling=True): the policy is being deleted and the
	// operator could not remove its annotation from a workload.
	ReasonRestoreFailed ConditionReason = "RestoreFailed"
	// ReasonDeleting (Ready=False): the policy is being deleted and is restoring workloads.
	ReasonDeleting ConditionReason = "Deleting"
	// ReasonSucceeded (Reconciling=False, Stalled=False): nothing is in progress or stuck.
	ReasonSucceeded ConditionReason = "Succeeded"
	// ReasonNoUnhealthyEvents (ProbesHealthy=True): no Unhealthy events within the window.
	ReasonNoUnhealthyEvents ConditionReason = "NoUnhealthyEvents"
	// ReasonUnhealthyPods (ProbesHealthy=False): some pods reported Unhealthy events within the window.
	ReasonUnhealthyPods ConditionReason = "UnhealthyPods"
)

// EventReason is the reason of a Kubernetes Event the operator records on a policy, in
// Successful/Failed pairs where there are two outcomes.
type EventReason string

const (
	// EventAnnotated: the operator set the rewrite annotation on a workload's pod template.
	EventAnnotated EventReason = "Annotated"
	// EventAnnotateFailed: the operator could not set the rewrite annotation.
	EventAnnotateFailed EventReason = "AnnotateFailed"
	// EventRolloutStarted: the template change started a rollout.
	EventRolloutStarted EventReason = "RolloutStarted"
	// EventRolloutComplete: a rollout the policy started completed.
	EventRolloutComplete EventReason = "RolloutComplete"
	// EventRolloutFailed: a rollout the policy started missed progressDeadlineSeconds.
	EventRolloutFailed EventReason = "RolloutFailed"
	// EventRestored: the operator removed its annotation from a workload of a deleted policy.
	EventRestored EventReason = "Restored"
	// EventRestoreFailed: the operator could not remove its annotation.
	EventRestoreFailed EventReason = "RestoreFailed"
	// EventRestoreSkipped: a suspended policy was deleted with onDelete Restore; nothing was restored.
	EventRestoreSkipped EventReason = "RestoreSkipped"
	// EventInvalidSelector: the policy became Stalled because spec.selector cannot be parsed.
	EventInvalidSelector EventReason = "InvalidSelector"
	// EventConflict: the policy became Stalled because an older policy manages some workloads.
	EventConflict EventReason = "Conflict"
	// EventUnsupportedProbes: the policy became Stalled because redirecting would break probes.
	EventUnsupportedProbes EventReason = "UnsupportedProbes"
)
