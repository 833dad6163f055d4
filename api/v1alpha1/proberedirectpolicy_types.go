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

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadKind names a kind of workload whose pod template the operator annotates.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
type WorkloadKind string

const (
	KindDeployment  WorkloadKind = "Deployment"
	KindStatefulSet WorkloadKind = "StatefulSet"
	KindDaemonSet   WorkloadKind = "DaemonSet"
)

// ProbeType is a probe handler that a mesh can redirect through its agent.
// +kubebuilder:validation:Enum=HTTP;TCP;GRPC
type ProbeType string

const (
	ProbeTypeHTTP ProbeType = "HTTP"
	ProbeTypeTCP  ProbeType = "TCP"
	ProbeTypeGRPC ProbeType = "GRPC"
)

// Trigger says when a probe needs redirecting.
// +kubebuilder:validation:Enum=StrictMTLS;Always
type Trigger string

const (
	// TriggerStrictMTLS redirects HTTP and gRPC probes whose port is under STRICT mutual TLS, and TCP
	// probes of every workload in the mesh, because the sidecar makes those pass falsely in every mode.
	TriggerStrictMTLS Trigger = "StrictMTLS"
	// TriggerAlways redirects every selected probe of every workload in the mesh.
	TriggerAlways Trigger = "Always"
)

// DeletionPolicy says what happens to the operator's annotations when the policy is deleted.
// +kubebuilder:validation:Enum=Keep;Restore
type DeletionPolicy string

const (
	// DeletionPolicyKeep leaves the annotations in place.
	DeletionPolicyKeep DeletionPolicy = "Keep"
	// DeletionPolicyRestore removes the annotations the operator added, rolling the workloads back.
	DeletionPolicyRestore DeletionPolicy = "Restore"
)

// ProbeRedirectPolicySpec selects workloads whose kubelet probes must be redirected through the
// mesh agent, and says how to roll them.
type ProbeRedirectPolicySpec struct {
	// selector matches the pod-template labels of Deployments, StatefulSets and DaemonSets in the
	// policy's namespace. It is required; write `selector: {}` to select every workload.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="selector.matchExpressions[].operator must be one of In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && size(e.values) > 0))",message="selector.matchExpressions[].values must be non-empty when the operator is In or NotIn"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || size(e.values) == 0)",message="selector.matchExpressions[].values must be empty when the operator is Exists or DoesNotExist"
	Selector *LabelSelector `json:"selector,omitempty"`

	// workloadKinds limits the kinds of workload the policy selects. Defaults to all three.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +default=["Deployment","StatefulSet","DaemonSet"]
	WorkloadKinds []WorkloadKind `json:"workloadKinds,omitempty"`

	// probeTypes lists the probe handlers whose need for redirection makes the operator annotate a
	// workload. Exec probes run inside the container, are never redirected, and are reported as not
	// needing it. Note that once a workload is annotated, the mesh rewrites all of its HTTP, TCP and
	// gRPC probes. Defaults to all three.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +default=["HTTP","TCP","GRPC"]
	ProbeTypes []ProbeType `json:"probeTypes,omitempty"`

	// trigger says when a probe needs redirecting. StrictMTLS (the default) redirects HTTP and gRPC
	// probes whose port is under STRICT mutual TLS, and TCP probes of every workload in the mesh.
	// Always redirects every selected probe of every workload in the mesh.
	// +optional
	// +default="StrictMTLS"
	Trigger Trigger `json:"trigger,omitempty"`

	// rollout limits how the template changes roll out.
	// +optional
	// +default={}
	Rollout RolloutPolicy `json:"rollout,omitzero"`

	// suspend makes the policy report only: it changes no workload while true.
	// +optional
	// +default=false
	Suspend *bool `json:"suspend,omitempty"`

	// onDelete says what happens to the annotations the operator added when the policy is deleted:
	// Keep (the default) leaves them; Restore removes them, limited by the same rollout settings.
	// +optional
	// +default="Keep"
	OnDelete DeletionPolicy `json:"onDelete,omitempty"`

	// kuma holds the settings for workloads whose sidecar Kuma or Kong Mesh injects.
	// +optional
	// +default={}
	Kuma KumaSettings `json:"kuma,omitzero"`
}

// KumaSettings are a policy's settings for Kuma and Kong Mesh workloads.
type KumaSettings struct {
	// applicationProbeProxyPort is the port the operator writes to a workload's pod-template
	// annotation kuma.io/application-probe-proxy-port when its probes need redirecting: Kuma's
	// sidecar (kuma-dp) serves the redirected probes there. Defaults to 9001, Kuma's own default
	// (kuma-cp runtime.kubernetes.injector.applicationProbeProxyPort). It must not be a port the
	// app's probes use; Kuma's injector refuses such a pod.
	// +optional
	// +default=9001
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ApplicationProbeProxyPort int32 `json:"applicationProbeProxyPort,omitempty"`
}

// RolloutPolicy limits how annotated workloads roll out.
type RolloutPolicy struct {
	// maxConcurrent is the number of workloads that may be rolling out at once because of this
	// policy. Defaults to 1.
	// +optional
	// +default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	MaxConcurrent int32 `json:"maxConcurrent,omitempty"`

	// progressDeadlineSeconds is how long one workload's rollout may take before it counts as
	// failed. Defaults to 600.
	// +optional
	// +default=600
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	ProgressDeadlineSeconds int32 `json:"progressDeadlineSeconds,omitempty"`

	// pauseOnFailure stops further rollouts once one has failed, until it completes or is changed.
	// Defaults to true.
	// +optional
	// +default=true
	PauseOnFailure *bool `json:"pauseOnFailure,omitempty"`
}

// MeshName names the service mesh that injects a workload's sidecar.
// +kubebuilder:validation:Enum=Istio;Kuma
type MeshName string

// Meshes the operator knows.
const (
	// MeshIstio is Istio (and meshes built on it, such as Alibaba Cloud Service Mesh).
	MeshIstio MeshName = "Istio"
	// MeshKuma is Kuma (and Kong Mesh, Kuma with enterprise parts).
	MeshKuma MeshName = "Kuma"
)

// MTLSMode is the effective mutual TLS mode: Istio's PeerAuthentication mode, or Kuma's (the
// Mesh's enabled mTLS backend, overridden by MeshTLS policies). Kuma's Strict and Permissive read
// as STRICT and PERMISSIVE; a Kuma Mesh without mTLS reads as DISABLE.
// +kubebuilder:validation:Enum=STRICT;PERMISSIVE;DISABLE
type MTLSMode string

const (
	MTLSStrict     MTLSMode = "STRICT"
	MTLSPermissive MTLSMode = "PERMISSIVE"
	MTLSDisable    MTLSMode = "DISABLE"
)

// WorkloadState summarises where one selected workload stands.
// +kubebuilder:validation:Enum=Redirected;Rolling;Queued;Suspended;RolloutFailed;ManualRolloutRequired;NotNeeded;OptedOut;NotInMesh;Unsupported;Conflict
type WorkloadState string

const (
	// WorkloadRedirected: the template is annotated and every current pod's probes are rewritten.
	WorkloadRedirected WorkloadState = "Redirected"
	// WorkloadRolling: the template is annotated and its rollout is in progress.
	WorkloadRolling WorkloadState = "Rolling"
	// WorkloadQueued: the workload needs the annotation and waits for a rollout slot.
	WorkloadQueued WorkloadState = "Queued"
	// WorkloadSuspended: the workload needs the annotation, but the policy is suspended.
	WorkloadSuspended WorkloadState = "Suspended"
	// WorkloadRolloutFailed: the rollout did not complete within progressDeadlineSeconds.
	WorkloadRolloutFailed WorkloadState = "RolloutFailed"
	// WorkloadManualRolloutRequired: the template is annotated, but a paused Deployment or an
	// OnDelete update strategy means new pods only come when a person acts.
	WorkloadManualRolloutRequired WorkloadState = "ManualRolloutRequired"
	// WorkloadNotNeeded: none of its probes needs redirecting.
	WorkloadNotNeeded WorkloadState = "NotNeeded"
	// WorkloadOptedOut: the user set the rewrite annotation to false; the operator respects it.
	WorkloadOptedOut WorkloadState = "OptedOut"
	// WorkloadNotInMesh: no sidecar is injected into its pods.
	WorkloadNotInMesh WorkloadState = "NotInMesh"
	// WorkloadUnsupported: redirecting would break a probe (see the probe reasons); left untouched.
	WorkloadUnsupported WorkloadState = "Unsupported"
	// WorkloadConflict: an older policy in the namespace selects the same workload and manages it.
	WorkloadConflict WorkloadState = "Conflict"
)

// ProbeKind is the kubelet probe a container declares.
// +kubebuilder:validation:Enum=Readiness;Liveness;Startup
type ProbeKind string

const (
	ProbeReadiness ProbeKind = "Readiness"
	ProbeLiveness  ProbeKind = "Liveness"
	ProbeStartup   ProbeKind = "Startup"
)

// ProbeHandler is how a probe checks its container.
// +kubebuilder:validation:Enum=HTTP;TCP;GRPC;Exec
type ProbeHandler string

const (
	HandlerHTTP ProbeHandler = "HTTP"
	HandlerTCP  ProbeHandler = "TCP"
	HandlerGRPC ProbeHandler = "GRPC"
	HandlerExec ProbeHandler = "Exec"
)

// ProbeState says whether one probe is redirected.
// +kubebuilder:validation:Enum=Rewritten;PendingRollout;NotRewritten;NotNeeded;OptedOut;NotInMesh;Unsupported
type ProbeState string

const (
	// ProbeRewritten: every current pod probes the mesh agent, which holds the original probe.
	ProbeRewritten ProbeState = "Rewritten"
	// ProbePendingRollout: the probe needs redirecting and some pods (or the template) do not yet have it.
	ProbePendingRollout ProbeState = "PendingRollout"
	// ProbeNotRewritten: pods were created from the annotated template, yet the probe was not rewritten.
	ProbeNotRewritten ProbeState = "NotRewritten"
	// ProbeNotNeeded: the probe needs no redirection.
	ProbeNotNeeded ProbeState = "NotNeeded"
	// ProbeOptedOut: the user turned the rewrite off for this workload.
	ProbeOptedOut ProbeState = "OptedOut"
	// ProbeNotInMesh: the workload has no sidecar.
	ProbeNotInMesh ProbeState = "NotInMesh"
	// ProbeUnsupported: redirecting would break this probe (reason says why).
	ProbeUnsupported ProbeState = "Unsupported"
)

// ProbeStatus reports one probe of one container of a selected workload.
type ProbeStatus struct {
	// container is the name of the container that declares the probe.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Container string `json:"container,omitempty"`

	// kind is Readiness, Liveness or Startup.
	// +required
	Kind ProbeKind `json:"kind,omitempty"`

	// handler is HTTP, TCP, GRPC or Exec.
	// +required
	Handler ProbeHandler `json:"handler,omitempty"`

	// mtlsMode is the effective mTLS mode on the probed port.
	// +optional
	MTLSMode MTLSMode `json:"mtlsMode,omitempty"`

	// original is the target the probe was written with, for example "HTTP :80/index.html".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Original string `json:"original,omitempty"`

	// rewritten is the target the mesh rewrites it to, for example "HTTP :15020/app-health/web/readyz".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Rewritten string `json:"rewritten,omitempty"`

	// state says whether the probe is redirected.
	// +required
	State ProbeState `json:"state,omitempty"`

	// reason says why the probe is in its state, in one CamelCase word.
	// +optional
	Reason StatusReason `json:"reason,omitempty"`

	// message explains the reason to a person.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// WorkloadStatus reports one selected workload.
type WorkloadStatus struct {
	// kind is Deployment, StatefulSet or DaemonSet.
	// +required
	Kind WorkloadKind `json:"kind,omitempty"`

	// name is the workload's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// mesh is the service mesh that injects the workload's sidecar, or would inject it.
	// +optional
	Mesh MeshName `json:"mesh,omitempty"`

	// mtlsMode is the effective workload-level mTLS mode.
	// +optional
	MTLSMode MTLSMode `json:"mtlsMode,omitempty"`

	// state summarises where the workload stands.
	// +required
	State WorkloadState `json:"state,omitempty"`

	// reason says why, in one CamelCase word.
	// +optional
	Reason StatusReason `json:"reason,omitempty"`

	// message explains the reason to a person.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// probes reports each probe of each container in the pod template.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Probes []ProbeStatus `json:"probes,omitempty"`
}

// UnhealthyPod reports a pod of a selected workload for which the kubelet recently emitted
// `Warning Unhealthy` events.
type UnhealthyPod struct {
	// pod is the pod's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Pod string `json:"pod,omitempty"`

	// workloadKind is the kind of the workload the pod belongs to.
	// +required
	WorkloadKind WorkloadKind `json:"workloadKind,omitempty"`

	// workload is the name of the workload the pod belongs to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Workload string `json:"workload,omitempty"`

	// container is the container whose probe failed, from the latest event's
	// involvedObject.fieldPath. Failures of the mesh's own sidecar (istio-proxy) are never listed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Container string `json:"container,omitempty"`

	// probeKind is the kind of probe that failed, parsed from the event message.
	// +optional
	ProbeKind ProbeKind `json:"probeKind,omitempty"`

	// count is how many times the kubelet reported the failure within the window; at least 1.
	// +required
	// +kubebuilder:validation:Minimum=1
	Count int32 `json:"count,omitempty"`

	// lastMessage is the message of the latest event, for example
	// "Readiness probe failed: HTTP probe failed with statuscode: 500".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	LastMessage string `json:"lastMessage,omitempty"`

	// lastSeen is when the latest event was reported.
	// +required
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
}

// RolloutRecord remembers a rollout the operator started, so that its deadline survives restarts.
type RolloutRecord struct {
	// kind is Deployment, StatefulSet or DaemonSet.
	// +required
	Kind WorkloadKind `json:"kind,omitempty"`

	// name is the workload's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// generation is the workload's metadata.generation right after the operator changed its template.
	// +required
	// +kubebuilder:validation:Minimum=1
	Generation int64 `json:"generation,omitempty"`

	// startedAt is when the operator changed the template.
	// +required
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
}

// PolicySummary holds the exact totals behind the bounded lists.
type PolicySummary struct {
	// selectedWorkloads is the number of workloads the selector matches.
	// +optional
	SelectedWorkloads int32 `json:"selectedWorkloads"`

	// annotatedWorkloads is the number of selected workloads whose template enables the rewrite.
	// +optional
	AnnotatedWorkloads int32 `json:"annotatedWorkloads"`

	// rolledOutWorkloads is the number of annotated workloads whose rollout is complete.
	// +optional
	RolledOutWorkloads int32 `json:"rolledOutWorkloads"`

	// rewrittenProbes is the number of probes verified as rewritten on every current pod.
	// +optional
	RewrittenProbes int32 `json:"rewrittenProbes"`

	// pendingProbes is the number of probes that need redirecting and are not rewritten yet.
	// +optional
	PendingProbes int32 `json:"pendingProbes"`

	// unhealthyPods is the number of pods with Unhealthy events within the window.
	// +optional
	UnhealthyPods int32 `json:"unhealthyPods"`
}

// ProbeRedirectPolicyStatus is the observed state of a ProbeRedirectPolicy.
type ProbeRedirectPolicyStatus struct {
	// conditions are Ready, Reconciling, Stalled (kstatus rules) and ProbesHealthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation this status describes.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// mesh names the service meshes of the policy's workloads, comma separated in a fixed order
	// (for example "Istio", "Kuma" or "Istio,Kuma"); without selected workloads in a mesh, the
	// mesh whose injection labels the namespace carries.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Mesh string `json:"mesh,omitempty"`

	// mtlsMode is the effective namespace-level mTLS mode of the first mesh in mesh.
	// +optional
	MTLSMode MTLSMode `json:"mtlsMode,omitempty"`

	// istioVersion is the Istio version the decisions follow, for example "1.27.1", read from the
	// istio-proxy image of the namespace's live pods, else from the istiod Deployment in the root
	// namespace; "unknown" when neither tells, and Istio's newest behaviour is then assumed. A
	// workload's own pods, when they show a version, decide for that workload.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	IstioVersion string `json:"istioVersion,omitempty"`

	// summary holds the exact totals; the lists below are bounded.
	// +optional
	Summary PolicySummary `json:"summary,omitzero"`

	// workloads reports each selected workload, those needing attention first (at most 100).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Workloads []WorkloadStatus `json:"workloads,omitempty"`

	// unhealthyPods reports the pods with recent Unhealthy events, latest first (at most 50).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	UnhealthyPods []UnhealthyPod `json:"unhealthyPods,omitempty"`

	// rollouts remembers the rollouts this policy started that have not completed yet.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Rollouts []RolloutRecord `json:"rollouts,omitempty"`
}

// The resource's category is not "mesh": kubectl resolves a category before a kind's singular
// name, so it would take `kubectl get mesh` from Kuma's Mesh.

// ProbeRedirectPolicy makes the service mesh redirect the kubelet probes of selected workloads
// through its agent, so that probes keep telling the truth under mutual TLS.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=prp,categories=probe-redirect
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.status.mesh`,description="Service meshes of the selected workloads"
// +kubebuilder:printcolumn:name="MTLS",type=string,JSONPath=`.status.mtlsMode`,description="Effective namespace-level mTLS mode"
// +kubebuilder:printcolumn:name="Workloads",type=integer,JSONPath=`.status.summary.selectedWorkloads`,description="Selected workloads"
// +kubebuilder:printcolumn:name="Rewritten",type=integer,JSONPath=`.status.summary.rewrittenProbes`,description="Probes verified as rewritten on live pods"
// +kubebuilder:printcolumn:name="Unhealthy",type=integer,JSONPath=`.status.summary.unhealthyPods`,description="Pods with recent Unhealthy events"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Istio",type=string,priority=1,JSONPath=`.status.istioVersion`,description="Istio version the decisions follow"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProbeRedirectPolicy struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec selects the workloads and says how to redirect and roll them.
	// +required
	Spec ProbeRedirectPolicySpec `json:"spec,omitzero"`

	// status reports what the operator observed and did.
	// +optional
	Status ProbeRedirectPolicyStatus `json:"status,omitzero"`
}

// ProbeRedirectPolicyList contains a list of ProbeRedirectPolicy.
// +kubebuilder:object:root=true
type ProbeRedirectPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ProbeRedirectPolicy `json:"items"`
}
