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

// Reasons that only Kuma (and Kong Mesh, which ships Kuma's injector) gives. They follow kumahq/kuma
// at tag v2.14.3; internal/mesh/kuma cites the file and function behind each. Reasons shared with
// Istio (NoSidecar, ProbeNotRewritten, NamedPortNotDeclared, ...) are in reasons.go.

// Why a workload is, or is not, in a Kuma mesh.
const (
	// StatusReasonInjectionException: the pod template carries a label that Kuma's injector config
	// lists under runtime.kubernetes.injector.exceptions.labels (by default openshift.io/build.name
	// and openshift.io/deployer-pod-for.name, any value), so the injector skips it (kumahq/kuma
	// pkg/plugins/runtime/k8s/webhooks/injector/precheck.go, isInjectionException).
	StatusReasonInjectionException StatusReason = "InjectionException"
	// StatusReasonInjectionLabelNotSelected: kuma.io/sidecar-injection has a value Kuma's injector
	// would accept ("yes", "true" on the pod), but none of the webhooks of Kuma's chart selects the
	// pod: the namespace webhook wants the namespace label "enabled" or "true", the pod webhook wants
	// the pod label exactly "enabled" (deployments/charts/kuma/templates/cp-webhooks-and-secrets.yaml).
	StatusReasonInjectionLabelNotSelected StatusReason = "InjectionLabelNotSelected"
	// StatusReasonInvalidInjectionLabel: the pod's or namespace's kuma.io/sidecar-injection label is
	// none of enabled, disabled, true, false, yes, no. Kuma's injector answers with an error and, with
	// the chart's failurePolicy Fail, the API server refuses the pod (metadata/annotations.go,
	// GetEnabled; webhooks/pod_mutator.go).
	StatusReasonInvalidInjectionLabel StatusReason = "InvalidInjectionLabel"
)

// Why Kuma's application probe proxy would break or refuse a probe (hazards).
const (
	// StatusReasonGatewayPod (workload: NotNeeded): the pod has the kuma.io/gateway annotation, a
	// delegated gateway. Its incoming traffic bypasses the sidecar and reaches the gateway directly
	// (Kong Mesh docs, "Delegated gateways"), so the kubelet's probes are neither reset nor answered
	// by the sidecar; Kuma also forces kuma.io/application-probe-proxy-port to "0" there, and its
	// injector refuses a gateway pod whose annotation asks for a port above 0
	// (probes/pod_probe_overrider.go, SetApplicationProbeProxyPortAnnotation).
	StatusReasonGatewayPod StatusReason = "GatewayPod"
	// StatusReasonMeshNotFound (workload): the pods join a Kuma Mesh (kuma.io/mesh, else "default")
	// that does not exist; Kuma's injector refuses such pods (webhooks/injector/precheck.go).
	StatusReasonMeshNotFound StatusReason = "MeshNotFound"
	// StatusReasonProbePortIsProxyPort: the probe targets the application probe proxy's own port.
	// Kuma's injector refuses the whole pod ("Port for probe cannot be set to ...";
	// probes/probe_converter.go, ToVirtual).
	StatusReasonProbePortIsProxyPort StatusReason = "ProbePortIsProxyPort"
	// StatusReasonProbeProxyPortInUse: a container of the pod declares the application probe proxy's
	// port as a containerPort. kuma-dp listens on that port on every address of the pod, so the app
	// and the probe proxy would fight over it (app/kuma-dp/pkg/dataplane/probes/component.go).
	StatusReasonProbeProxyPortInUse StatusReason = "ProbeProxyPortInUse"
	// StatusReasonProbeHostDropped: httpGet.host or tcpSocket.host is set. Kuma's probe converter
	// builds a fresh httpGet without it and kuma-dp probes the pod's own IP, so the probe would stop
	// checking the host it was written for (probes/probe_converter.go).
	StatusReasonProbeHostDropped StatusReason = "ProbeHostDropped"
	// StatusReasonInvalidProbeProxyPort: kuma.io/application-probe-proxy-port is not a uint32. Kuma's
	// injector answers with an error and the API server refuses the pod (metadata/annotations.go,
	// GetUint32).
	StatusReasonInvalidProbeProxyPort StatusReason = "InvalidProbeProxyPort"
)

// What a live Kuma pod shows about one probe.
const (
	// StatusReasonVirtualProbesHTTPOnly: the pod uses Kuma's legacy virtual probes (the application
	// probe proxy is off), which redirect httpGet probes only; TCP and gRPC probes are left alone
	// (webhooks/injector/probes.go, overrideHTTPProbes).
	StatusReasonVirtualProbesHTTPOnly StatusReason = "VirtualProbesHTTPOnly"
	// StatusReasonProbeProxyDisabled: the pod's kuma.io/application-probe-proxy-port is "0" and
	// virtual probes are off, so Kuma left every probe alone (webhooks/injector/injector.go).
	StatusReasonProbeProxyDisabled StatusReason = "ProbeProxyDisabled"
	// StatusReasonInitContainerBeforeSidecar: the probe belongs to an init container that does not
	// come after kuma-sidecar in initContainers (kuma-sidecar runs as an ordinary container when
	// native sidecars are off), and Kuma rewrites only init containers placed after it
	// (probes/pod_probe_overrider.go, SetupAppProbeProxies).
	StatusReasonInitContainerBeforeSidecar StatusReason = "InitContainerBeforeSidecar"
)
