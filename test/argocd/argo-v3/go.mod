// The Argo CD names test/argocd uses, over argo-cd/v3 (see argo.go).
module github.com/proberedirect/probe-redirect-operator/test/argocd/argo

go 1.26.0

require github.com/argoproj/argo-cd/v3 v3.3.10
