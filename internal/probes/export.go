package probes

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// This file exports small formatting and port helpers for other meshes' packages (for example
// internal/mesh/kuma), so that every mesh describes probes in the same words. Each wrapper only
// calls the unexported helper; none changes its behaviour.

// DescribeHTTP formats an httpGet target as Probe.Original does: "HTTP :80/path" or
// "HTTPS host:8443/path"; an empty path is shown as "/" and a path without a leading "/" gets one.
func DescribeHTTP(scheme corev1.URIScheme, host, port, path string) string {
	return describeHTTP(scheme, host, port, path)
}

// DescribeTCP formats a tcpSocket target as "TCP :2940" or "TCP host:2940".
func DescribeTCP(host, port string) string {
	return describeTCP(host, port)
}

// DescribeGRPC formats a grpc target as "GRPC :9090" or "GRPC :9090 service=foo".
func DescribeGRPC(port int32, service *string) string {
	return describeGRPC(port, service)
}

// DescribeExec formats an exec probe as "exec cat /tmp/healthy", cut to 100 runes.
func DescribeExec(command []string) string {
	return describeExec(command)
}

// PortText is the decimal port, or the port name when the name could not be resolved (port 0).
func PortText(port int32, name string) string {
	return portText(port, name)
}

// ResolvePort resolves a probe port against the container's own ports, as the kubelet does: an
// integer is returned as is; a name is looked up in c.Ports. ok is false for a name the container
// does not declare (number is then 0 and name the port name).
func ResolvePort(c *corev1.Container, port intstr.IntOrString) (number int32, name string, ok bool) {
	return resolvePort(c, port)
}

// KindWord is the probe kind in lower case for messages: "readiness", "liveness" or "startup".
func KindWord(p Probe) string {
	return kindWord(p.Kind)
}
