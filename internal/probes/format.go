package probes

import (
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// MaxExecText bounds the length, in runes, of an exec probe's description.
const MaxExecText = 100

// DescribeHTTP formats an httpGet target as "HTTP :80/path" or
// "HTTPS host:8443/path". An empty path is shown as "/" and a path without a
// leading "/" gets one, as the pilot-agent does.
func DescribeHTTP(scheme corev1.URIScheme, host, port, path string) string {
	s := "HTTP"
	if scheme == corev1.URISchemeHTTPS {
		s = "HTTPS"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return s + " " + host + ":" + port + path
}

// DescribeTCP formats a tcpSocket target as "TCP :2940".
func DescribeTCP(host, port string) string {
	return "TCP " + host + ":" + port
}

// DescribeGRPC formats a grpc target as "GRPC :9090" or
// "GRPC :9090 service=foo".
func DescribeGRPC(port int32, service *string) string {
	s := "GRPC :" + strconv.Itoa(int(port))
	if service != nil && *service != "" {
		s += " service=" + *service
	}
	return s
}

// DescribeExec formats an exec probe as "exec cat /tmp/healthy", cut to
// MaxExecText runes.
func DescribeExec(command []string) string {
	s := strings.TrimSpace("exec " + strings.Join(command, " "))
	if utf8.RuneCountInString(s) <= MaxExecText {
		return s
	}
	r := []rune(s)
	return string(r[:MaxExecText-1]) + "…"
}

// PortText is the decimal port, or the port name when it could not be resolved.
func PortText(port int32, name string) string {
	if port == 0 && name != "" {
		return name
	}
	return strconv.Itoa(int(port))
}
