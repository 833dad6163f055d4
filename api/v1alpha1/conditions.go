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

// Condition types. Ready, Reconciling and Stalled follow the kstatus conventions, so Flux, Argo CD
// and `kubectl wait` read the policy without custom code.
const (
	// ConditionReady is True when every selected workload that needs redirection has the annotation,
	// has rolled out, and its live pods' probes are verified as rewritten.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is still annotating or rolling workloads
	// ("abnormal-true": kstatus reads it as InProgress).
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a person: a rollout missed its deadline, the
	// selector is invalid, policies overlap, or a probe cannot be redirected safely
	// ("abnormal-true": kstatus reads it as Failed).
	ConditionStalled = "Stalled"
	// ConditionProbesHealthy is False when pods of selected workloads reported Unhealthy events within
	// the window.
	ConditionProbesHealthy = "ProbesHealthy"
)

// Condition reasons.
const (
	// ReasonRedirected (Ready=True): all probes that need it are rewritten on live pods.
	ReasonRedirected = "Redirected"
	// ReasonNothingToRedirect (Ready=True): no selected workload needs redirection.
	ReasonNothingToRedirect = "NothingToRedirect"
	// ReasonRolloutInProgress (Ready=False, Reconciling=True): workloads are rolling or queued.
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonRolloutFailed (Ready=False, Stalled=True): a rollout missed progressDeadlineSeconds.
	ReasonRolloutFailed = "RolloutFailed"
	// ReasonManualRolloutRequired (Ready=False): paused Deployments or OnDelete strategies.
	ReasonManualRolloutRequired = "ManualRolloutRequired"
	// ReasonSuspended (Ready=False): spec.suspend is true and workloads still need redirection.
	ReasonSuspended = "Suspended"
	// ReasonInvalidSelector (Ready=False, Stalled=True): spec.selector cannot be parsed.
	ReasonInvalidSelector = "InvalidSelector"
	// ReasonConflict (Ready=False, Stalled=True): an older policy manages some selected workloads.
	ReasonConflict = "Conflict"
	// ReasonUnsupportedProbes (Ready=False, Stalled=True): redirecting would break some probes.
	ReasonUnsupportedProbes = "UnsupportedProbes"
	// ReasonObserveFailed (Ready=Unknown): the operator could not read what it needs.
	ReasonObserveFailed = "ObserveFailed"
	// ReasonApplyFailed (Ready=False): the operator could not annotate a workload.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonDeleting (Ready=False): the policy is being deleted and is restoring workloads.
	ReasonDeleting = "Deleting"
	// ReasonSucceeded (Reconciling=False, Stalled=False): nothing is in progress or stuck.
	ReasonSucceeded = "Succeeded"
	// ReasonNoUnhealthyEvents (ProbesHealthy=True): no Unhealthy events within the window.
	ReasonNoUnhealthyEvents = "NoUnhealthyEvents"
	// ReasonUnhealthyPods (ProbesHealthy=False): some pods reported Unhealthy events within the window.
	ReasonUnhealthyPods = "UnhealthyPods"
)

// Event reasons recorded on the policy, in Successful/Failed pairs where there are two outcomes.
const (
	EventAnnotated         = "Annotated"
	EventAnnotateFailed    = "AnnotateFailed"
	EventRolloutStarted    = "RolloutStarted"
	EventRolloutComplete   = "RolloutComplete"
	EventRolloutFailed     = "RolloutFailed"
	EventRestored          = "Restored"
	EventRestoreFailed     = "RestoreFailed"
	EventRestoreSkipped    = "RestoreSkipped"
	EventInvalidSelector   = "InvalidSelector"
	EventConflict          = "Conflict"
	EventUnsupportedProbes = "UnsupportedProbes"
)
