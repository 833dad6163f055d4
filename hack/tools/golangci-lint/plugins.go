package main

// Module plugins, as `golangci-lint custom` generates them in
// cmd/golangci-lint/plugins.go (import defaults to the module path).
import (
	_ "sigs.k8s.io/kube-api-linter"
)
