// Package packaging tests what users install: the generated RBAC (least privilege), the CRD's
// documentation (what `kubectl explain` shows), the kustomize installer and the Dockerfile.
package packaging
