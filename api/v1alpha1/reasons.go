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

// StatusReason says, in one CamelCase word, why a workload (status.workloads[].reason) or a probe
// (status.workloads[].probes[].reason) is in its state. Many reasons apply to both: a workload
// outside the mesh gives each of its probes the same reason.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=64
type StatusReason string

// Why a workload is, or is not, in the mesh. They follow the default MutatingWebhookConfiguration
// of Istio's istio-discovery chart and injectRequired in istio/istio pkg/kube/inject/inject.go.
const (
	// StatusReasonSystemNamespace: Istio never injects kube-system, kube-public, kube-node-lease or
	// local-path-storage (inject.go IgnoredNamespaces).
	StatusReasonSystemNamespace StatusReason = "SystemNamespace"
	// StatusReasonNamespaceInjectionDisabled: the namespace's istio-injection label is not "enabled".
	StatusReasonNamespaceInjectionDisabled StatusReason = "NamespaceInjectionDisabled"
	// StatusReasonPodInjectionDisabled: the pod template's sidecar.istio.io/inject says no.
	StatusReasonPodInjectionDisabled StatusReason = "PodInjectionDisabled"
	// StatusReasonNamespaceInjectionEnabled: the namespace has istio-injection=enabled.
	StatusReasonNamespaceInjectionEnabled StatusReason = "NamespaceInjectionEnabled"
	// StatusReasonNamespaceRevision: the namespace has an istio.io/rev label.
	StatusReasonNamespaceRevision StatusReason = "NamespaceRevision"
	// StatusReasonPodInjectionEnabled: the pod template has the label sidecar.istio.io/inject=true.
	StatusReasonPodInjectionEnabled StatusReason = "PodInjectionEnabled"
	// StatusReasonPodRevision: the pod template has an istio.io/rev label.
	StatusReasonPodRevision StatusReason = "PodRevision"
	// StatusReasonNoInjectionLabel: neither the namespace nor the pod template asks for a sidecar.
	StatusReasonNoInjectionLabel StatusReason = "NoInjectionLabel"
	// StatusReasonHostNetwork: Istio never injects a pod with spec.hostNetwork true.
	StatusReasonHostNetwork StatusReason = "HostNetwork"
	// StatusReasonSidecarOnLivePods / StatusReasonNoSidecarOnLivePods: the Istio version is
	// unknown, so whether the workload is in the mesh is read from its live pods (do they have
	// istio-proxy?) rather than from the template's labels.
	StatusReasonSidecarOnLivePods   StatusReason = "SidecarOnLivePods"
	StatusReasonNoSidecarOnLivePods StatusReason = "NoSidecarOnLivePods"
)

// Why the operator leaves a workload's template alone.
const (
	// StatusReasonConflict: an older policy in the namespace selects the workload and manages it.
	StatusReasonConflict StatusReason = "Conflict"
	// StatusReasonRewriteDisabledByUser: sidecar.istio.io/rewriteAppHTTPProbers is false on the
	// template; the operator respects it.
	StatusReasonRewriteDisabledByUser StatusReason = "RewriteDisabledByUser"
	// StatusReasonInvalidRewriteAnnotation: sidecar.istio.io/rewriteAppHTTPProbers is not a boolean;
	// Istio ignores it and the operator does not overwrite what a person wrote.
	StatusReasonInvalidRewriteAnnotation StatusReason = "InvalidRewriteAnnotation"
	// StatusReasonInvalidStatusPort: status.sidecar.istio.io/port is not a port number.
	StatusReasonInvalidStatusPort StatusReason = "InvalidStatusPort"
	// StatusReasonNoProbeNeedsRedirect: no probe of the workload needs redirecting.
	StatusReasonNoProbeNeedsRedirect StatusReason = "NoProbeNeedsRedirect"
)

// Hazards: why redirecting a probe through the sidecar would break it. The workload takes the
// reason of its first hazardous probe.
const (
	// StatusReasonHostSet: httpGet.host is set. Istio keeps it on the rewritten probe, so the
	// kubelet would call <host>:<status port>/app-health/... instead of the pod's sidecar
	// (istio/istio#31087, #46215).
	StatusReasonHostSet StatusReason = "HostSet"
	// StatusReasonNamedPortNotDeclared: the probe names a port that its own container does not
	// declare. Istio leaves the probe out of ISTIO_KUBE_APP_PROBERS but still rewrites it, so the
	// agent answers 400.
	StatusReasonNamedPortNotDeclared StatusReason = "NamedPortNotDeclared"
	// StatusReasonStatusPortDisabled: status.sidecar.istio.io/port is "0", so no status server runs
	// and nothing answers the rewritten probe.
	StatusReasonStatusPortDisabled StatusReason = "StatusPortDisabled"
	// StatusReasonTCPHostIgnored: tcpSocket.host is set. The rewrite replaces the probe with an
	// httpGet to the agent, and the agent dials the pod's own IP, never that host, so the probe
	// would stop checking what it was written to check (istio/istio pkg/kube/inject/app_probe.go,
	// convertProbe; pilot/cmd/pilot-agent/status/server.go, the TCP prober dials the pod IP).
	StatusReasonTCPHostIgnored StatusReason = "TCPHostIgnored"
	// StatusReasonPortIsStatusPort: the probe targets the sidecar's status port itself. Istio takes
	// a probe on the mesh status port for one it already rewrote and leaves it out of
	// ISTIO_KUBE_APP_PROBERS (app_probe.go, DumpAppProbers: "Already is rewritten"), so the agent
	// has no original probe to run; the app cannot listen there either.
	StatusReasonPortIsStatusPort StatusReason = "PortIsStatusPort"
	// StatusReasonReservedPort: the probe targets a port Istio's sidecar reserves (15000, 15001,
	// 15004, 15006, 15008, 15009, 15021, 15053, 15090; istio.io "Application Requirements", Ports
	// used by Istio): it checks the sidecar, not the app, before and after the rewrite.
	StatusReasonReservedPort StatusReason = "ReservedPort"
	// StatusReasonStartupProbeBeforeSidecar: an init container with restartPolicy Always (a native
	// sidecar of the app's own) has a startup probe, and istio-proxy runs as an ordinary container
	// (native sidecars off). Istio rewrites init containers' probes too, but an ordinary
	// istio-proxy starts only after every init container's startup probe passed, so nothing serves
	// the rewritten probe and the pod never leaves initialisation (istio/istio
	// pkg/kube/inject/app_probe.go, patchRewriteProbe over InitContainers; Kubernetes KEP-753).
	StatusReasonStartupProbeBeforeSidecar StatusReason = "StartupProbeBeforeSidecar"
	// StatusReasonWorkloadUnsupported (probe): the probe could be redirected, but another probe of
	// the same workload cannot, so the workload is left untouched.
	StatusReasonWorkloadUnsupported StatusReason = "WorkloadUnsupported"
)

// Where the redirection of a workload stands.
const (
	// StatusReasonQueued: the workload needs the annotation and is annotated next.
	StatusReasonQueued StatusReason = "Queued"
	// StatusReasonWaitingForRolloutSlot: the workload waits until fewer than
	// spec.rollout.maxConcurrent rollouts are in progress.
	StatusReasonWaitingForRolloutSlot StatusReason = "WaitingForRolloutSlot"
	// StatusReasonPausedAfterFailure: a rollout failed and spec.rollout.pauseOnFailure is true.
	StatusReasonPausedAfterFailure StatusReason = "PausedAfterFailure"
	// StatusReasonSuspended: the workload needs the annotation, but spec.suspend is true.
	StatusReasonSuspended StatusReason = "Suspended"
	// StatusReasonAnnotateFailed: the API server refused the annotation; the operator retries.
	StatusReasonAnnotateFailed StatusReason = "AnnotateFailed"
	// StatusReasonRolloutStarted: the operator annotated the template; no new pod shows it yet.
	StatusReasonRolloutStarted StatusReason = "RolloutStarted"
	// StatusReasonRolloutInProgress: the workload's rollout is under way.
	StatusReasonRolloutInProgress StatusReason = "RolloutInProgress"
	// StatusReasonProgressDeadlineExceeded: the rollout did not finish within
	// spec.rollout.progressDeadlineSeconds (or the Deployment's own progressDeadlineSeconds).
	StatusReasonProgressDeadlineExceeded StatusReason = "ProgressDeadlineExceeded"
	// StatusReasonDeploymentPaused: the Deployment has spec.paused, so its controller does not roll
	// out template changes until it is resumed.
	StatusReasonDeploymentPaused StatusReason = "DeploymentPaused"
	// StatusReasonOnDeleteStrategy: the StatefulSet or DaemonSet uses updateStrategy.type OnDelete,
	// so pods pick up the new template only when someone deletes them.
	StatusReasonOnDeleteStrategy StatusReason = "OnDeleteStrategy"
	// StatusReasonPodsOnOldTemplate: some live pods predate the annotation (a partition, or pods
	// kept on purpose).
	StatusReasonPodsOnOldTemplate StatusReason = "PodsOnOldTemplate"
	// StatusReasonRewrittenInTemplate (workload and probe): the template was injected before it
	// was applied (`istioctl kube-inject`): it already holds istio-proxy, probes on the status
	// port and ISTIO_KUBE_APP_PROBERS, which the webhook merges again at pod creation (Istio's
	// merge-probers golden case). It needs no annotation; its probes are judged by the originals.
	StatusReasonRewrittenInTemplate StatusReason = "RewrittenInTemplate"
	// StatusReasonRedirectedByMeshDefault (workload): the template does not ask for the redirect,
	// but the mesh's default turns it on and the live pods show it (Kuma's application probe proxy
	// is on by default from 2.9), so nothing is written.
	StatusReasonRedirectedByMeshDefault StatusReason = "RedirectedByMeshDefault"
	// StatusReasonInjectedByTwoMeshes (workload): two meshes inject the workload's pods (both
	// sidecars are on them, or both meshes' injection labels select them); neither mesh's redirect
	// alone makes the probes pass, so the operator leaves the workload to a person.
	StatusReasonInjectedByTwoMeshes StatusReason = "InjectedByTwoMeshes"
	// StatusReasonProxylessTemplate: the pod uses one of Istio's proxyless gRPC injection templates
	// (inject.istio.io/templates grpc-agent or grpc-simple). They add no Envoy to intercept probes
	// and set rewriteAppHTTPProbers "false" themselves (istio/istio
	// manifests/charts/istio-control/istio-discovery/files/grpc-agent.yaml, grpc-simple.yaml),
	// so the operator cannot redirect the probes.
	StatusReasonProxylessTemplate StatusReason = "ProxylessTemplate"
	// StatusReasonUnknownInjectionTemplate: the pod names an injection template that is not one of
	// Istio's own (sidecar, gateway, grpc-agent, grpc-simple, spire), so whether it rewrites probes
	// cannot be told.
	StatusReasonUnknownInjectionTemplate StatusReason = "UnknownInjectionTemplate"
	// StatusReasonProbesRewritten (workload): every probe that can be is verified as rewritten.
	StatusReasonProbesRewritten StatusReason = "ProbesRewritten"
	// StatusReasonNotRewrittenByMesh (workload): pods come from the annotated template, yet the mesh
	// did not rewrite their probes.
	StatusReasonNotRewrittenByMesh StatusReason = "NotRewrittenByMesh"
	// StatusReasonWaitingToRestore: the policy is being deleted; the operator's annotation is
	// removed next.
	StatusReasonWaitingToRestore StatusReason = "WaitingToRestore"
	// StatusReasonRestoring: the operator removed its annotation; the workload rolls back.
	StatusReasonRestoring StatusReason = "Restoring"
	// StatusReasonRestoreFailed: the API server refused the removal of the annotation; the operator
	// retries.
	StatusReasonRestoreFailed StatusReason = "RestoreFailed"
)

// Whether one probe needs redirecting, and what the live pods show.
const (
	// StatusReasonExecProbe: exec probes run inside the container; the sidecar does not intercept them.
	StatusReasonExecProbe StatusReason = "ExecProbe"
	// StatusReasonProbeTypeNotSelected: spec.probeTypes does not include the probe's handler.
	StatusReasonProbeTypeNotSelected StatusReason = "ProbeTypeNotSelected"
	// StatusReasonTriggerAlways: spec.trigger is Always.
	StatusReasonTriggerAlways StatusReason = "TriggerAlways"
	// StatusReasonTCPPassesFalsely: the sidecar accepts every TCP connection, so a TCP probe passes
	// even when the app is down.
	StatusReasonTCPPassesFalsely StatusReason = "TCPPassesFalsely"
	// StatusReasonStrictMTLS: STRICT mutual TLS on the probed port rejects the kubelet, which has no
	// mesh certificate.
	StatusReasonStrictMTLS StatusReason = "StrictMTLS"
	// StatusReasonPortNotStrict: the probed port is not under STRICT mutual TLS.
	StatusReasonPortNotStrict StatusReason = "PortNotStrict"
	// StatusReasonTemplateAnnotated: the template is annotated and there are no pods to verify.
	StatusReasonTemplateAnnotated StatusReason = "TemplateAnnotated"
	// StatusReasonVerifiedOnPods: every current pod probes the agent, which holds the original probe.
	StatusReasonVerifiedOnPods StatusReason = "VerifiedOnPods"
	// StatusReasonNoSidecar: the live pod has no istio-proxy container.
	StatusReasonNoSidecar StatusReason = "NoSidecar"
	// StatusReasonProbeNotRewritten: the live kubelet probe is not a plain-HTTP httpGet on the status
	// port at the probe's /app-health/... path.
	StatusReasonProbeNotRewritten StatusReason = "ProbeNotRewritten"
	// StatusReasonMissingKubeAppProbersEntry: the live probe points at the agent, but
	// ISTIO_KUBE_APP_PROBERS has no entry for its path, so the agent answers 400.
	StatusReasonMissingKubeAppProbersEntry StatusReason = "MissingKubeAppProbersEntry"
	// StatusReasonInvalidKubeAppProbers: ISTIO_KUBE_APP_PROBERS is not a document the agent accepts;
	// the agent's status server then fails to start.
	StatusReasonInvalidKubeAppProbers StatusReason = "InvalidKubeAppProbers"
	// StatusReasonRewriteNotInThisIstio: the probe was not rewritten because the running Istio
	// predates rewriting its handler (TCP from 1.12, gRPC from 1.13; see internal/mesh Features).
	StatusReasonRewriteNotInThisIstio StatusReason = "RewriteNotInThisIstio"
	// StatusReasonAddedAfterInjection (probe, and workload when every probe left unrewritten is
	// one): the container exists only on the live pods, not in the template. A mutating webhook
	// that ran after Istio's injector added it, so Istio never saw its probe; Istio revisits such
	// pods only with sidecarInjectorWebhook.reinvocationPolicy IfNeeded (istio/istio#36353;
	// manifests/charts/istio-control/istio-discovery/values.yaml).
	StatusReasonAddedAfterInjection StatusReason = "AddedAfterInjection"
)
