// Package kuma holds Kuma's (and so Kong Mesh's) rules about kubelet probes, as kumahq/kuma at tag
// v2.14.3 (commit 0c7aaec033b7dad03c3a9f4d5b56eb6d941bfff9) applies them: whether the sidecar
// injector adds kuma-sidecar to a pod, which Mesh the pod joins, how the injector rewrites probes
// onto kuma-dp's application probe proxy (or onto the legacy virtual probes listener), how to read
// the original probe back from a rewritten one, and the effective mTLS mode of a workload from its
// Mesh and the MeshTLS policies that target it.
//
// It is pure logic over label and annotation maps, corev1 types and unstructured Kuma objects; it
// never talks to the API server. Every rule names the Kuma file and function it follows. Kuma's
// master branch (the unreleased 3.0.0) removes virtual probes and Mesh.spec.mtls; this package
// describes 2.14.
package kuma
