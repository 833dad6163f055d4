package istio

import (
	"slices"
	"strings"

	"istio.io/api/label"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
)

// IstioVersion is the Istio version a decision follows. Known is false when the cluster did not
// tell; every rule then takes Istio's newest behaviour.
type IstioVersion struct {
	Version *version.Version
	// Source says where the version was read: "istio-proxy image" (a live pod) or "istiod image".
	Source string
}

// Known reports whether a version was read.
func (v IstioVersion) Known() bool { return v.Version != nil }

// String is the version, or "unknown".
func (v IstioVersion) String() string {
	if v.Version == nil {
		return "unknown"
	}
	return v.Version.String()
}

// Has reports whether Istio at this version behaves as feature f says; an unknown version has
// every feature (the newest behaviour).
func (v IstioVersion) Has(f Feature) bool {
	return v.Version == nil || v.Version.AtLeast(f.Since)
}

// Feature is one version-dependent rule of Istio's injector, with the first x.y.0 release that
// has it and where that is recorded.
type Feature struct {
	Name   string
	Since  *version.Version
	Source string
}

// The version-dependent rules the operator follows (first tag that contains the change, from
// istio/istio's history; ../shared/reference/mesh-probes.md §1.3 and §1.10).
var (
	// RewriteTCPProbes: tcpSocket probes are rewritten to the agent (before, they were left alone).
	RewriteTCPProbes = Feature{"rewrite TCP probes", version.MajorMinor(1, 12), "istio/istio#33734 (1.12.0); releasenotes drop-tcp-probe.yaml"}
	// RewriteGRPCProbes: grpc probes are rewritten to the agent.
	RewriteGRPCProbes = Feature{"rewrite gRPC probes", version.MajorMinor(1, 13), "istio/istio#36706 (1.13.0)"}
	// StrictInjectLabel: only exactly "true" and "false" in sidecar.istio.io/inject decide; any
	// other value falls back to the namespace's default. Before, a value other than "", y, yes,
	// true or on (any case) turned injection off.
	StrictInjectLabel = Feature{"strict sidecar.istio.io/inject values", version.MajorMinor(1, 27), "istio/istio 1.27.0 change notes; pkg/kube/inject/inject.go, injectRequired"}
	// NativeSidecarsByDefault: ENABLE_NATIVE_SIDECARS defaults to "auto", on when every node's
	// kubelet is 1.33 or newer (assumed here); before, it defaulted to off.
	NativeSidecarsByDefault = Feature{"native sidecars by default", version.MajorMinor(1, 27), "istio/istio#56428, backported in #56918 (1.27.0); pilot/pkg/features/pilot.go"}
)

// Features lists the rules above, for the documentation and the status.
var Features = []Feature{RewriteTCPProbes, RewriteGRPCProbes, StrictInjectLabel, NativeSidecarsByDefault}

// VersionOfImage reads the Istio version from an istio-proxy or istiod image reference such as
// "docker.io/istio/proxyv2:1.27.1", "gcr.io/istio-release/pilot:1.26.0-distroless" or an ASM
// image tagged "v1.22.6.1-g5c1d..."; ok is false for a digest-only reference or a tag that is no
// version. Parsing is apimachinery's version.ParseGeneric on the tag.
func VersionOfImage(image string) (v *version.Version, ok bool) {
	ref, _, _ := strings.Cut(image, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash {
		return nil, false
	}
	tag := ref[colon+1:]
	// Keep major.minor.patch; ParseGeneric takes no pre-release or build suffix.
	if i := strings.IndexFunc(tag, func(r rune) bool { return r == '-' || r == '_' || r == '+' }); i >= 0 {
		tag = tag[:i]
	}
	if parts := strings.Split(strings.TrimPrefix(tag, "v"), "."); len(parts) > 3 {
		tag = strings.Join(parts[:3], ".")
	}
	parsed, err := version.ParseGeneric(tag)
	if err != nil {
		return nil, false
	}
	return parsed, true
}

// VersionOfPod reads the Istio version from the image of a pod's istio-proxy container (in
// containers or, as a native sidecar, in initContainers); ok is false without one.
func VersionOfPod(spec *corev1.PodSpec) (v *version.Version, ok bool) {
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if c.Name == ProxyContainerName {
			return VersionOfImage(c.Image)
		}
	}
	return nil, false
}

// IstiodLabelSelector selects istiod's Deployments in the root namespace (the istio-discovery
// chart labels them app=istiod).
var IstiodLabelSelector = map[string]string{"app": "istiod"}

// NamespaceVersion reads the Istio version of a namespace: the newest istio-proxy image of its
// live pods, else the image of the istiod Deployment that serves it. istiods are
// the Deployments IstiodLabelSelector selects in the root namespace; the one serving a namespace
// is the revision named by the namespace's istio.io/rev label, else the default revision (label
// istio.io/rev "default" or none). The result is unknown when none of them tells.
func NamespaceVersion(pods []*corev1.Pod, istiods []appsv1.Deployment, namespaceLabels map[string]string) IstioVersion {
	if v := NewestOnPods(pods); v.Known() {
		return v
	}
	revision := namespaceLabels[label.IoIstioRev.Name]
	for _, d := range istiods {
		rev := d.Spec.Template.Labels[label.IoIstioRev.Name]
		if rev == "" {
			rev = d.Labels[label.IoIstioRev.Name]
		}
		if (revision != "" && rev != revision) || (revision == "" && rev != "" && rev != "default") {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "discovery" {
				continue
			}
			if v, ok := VersionOfImage(c.Image); ok {
				return IstioVersion{Version: v, Source: "istiod image"}
			}
		}
	}
	return IstioVersion{}
}

// NewestOnPods is the newest Istio version the istio-proxy images of pods show (newest, so that
// the answer does not depend on the pods' order during an upgrade); unknown when none shows one.
func NewestOnPods(pods []*corev1.Pod) IstioVersion {
	var newest IstioVersion
	for _, pod := range pods {
		if v, ok := VersionOfPod(&pod.Spec); ok && (newest.Version == nil || v.GreaterThan(newest.Version)) {
			newest = IstioVersion{Version: v, Source: "istio-proxy image"}
		}
	}
	return newest
}
