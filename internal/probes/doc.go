// Package probes describes the kubelet probes of a pod template or pod in terms every mesh
// shares: one Probe per container and kind, what it checks in a person's words ("HTTP :8080/healthz"),
// and the shape of a live pod's verification (PodVerification). How a mesh rewrites probes, and how
// to tell a rewritten probe on a live pod, belongs to that mesh's package under internal/mesh.
// It is pure logic over corev1 types and never talks to the API server.
package probes
