# hack/tools.mk -- development tool binaries, built from Go modules only.
#
# Included by the root Makefile (`include hack/tools.mk`); also usable on its
# own: `make -f hack/tools.mk control-plane-bins controller-gen kustomize`.
#
# Nothing here downloads prebuilt binaries (setup-envtest does not work on our
# machines): every binary is compiled from the Go module proxy.
#
#   controller-gen, kustomize, kwok,  `go install pkg@version`
#   helm
#   etcd                              wrapper module hack/tools/etcd
#   kube-apiserver, kube-controller-manager, kube-scheduler
#                                     wrapper module hack/tools/kubernetes
#   golangci-lint-kal                 wrapper module hack/tools/golangci-lint
#                                     (golangci-lint v2 + kube-api-linter plugin)
#
# Each binary is built once as $(LOCALBIN)/<name>-<version> and symlinked to
# $(LOCALBIN)/<name>; a version bump produces a new file name and so a rebuild,
# and the wrapper builds also rebuild whenever the wrapper's go.mod/go.sum
# change. A second `make` does nothing.
#
# $(LOCALBIN) can be used directly as KUBEBUILDER_ASSETS for envtest (it
# contains `etcd` and `kube-apiserver`).

# Absolute directory of this file (must be evaluated before any other include).
# The including Makefile's default goal is preserved (restored at the end).
TOOLS_MK_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
TOOLS_MK_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TOOLS_DIR := $(TOOLS_MK_DIR)/tools

LOCALBIN ?= $(CURDIR)/bin
GO ?= go

## Versions. etcd and Kubernetes versions live in the wrapper go.mod files
## (single source of truth); they are read from there.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1
KWOK_VERSION ?= v0.8.0
# The same release as test/helm/go.mod (the one that pairs with Kubernetes 1.36).
HELM_VERSION ?= v3.21.4
ETCD_VERSION := $(shell awk '$$1=="go.etcd.io/etcd/server/v3" && $$2 ~ /^v/ {print $$2; exit}' $(TOOLS_DIR)/etcd/go.mod)
KUBERNETES_VERSION := $(shell awk '$$1=="k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2; exit}' $(TOOLS_DIR)/kubernetes/go.mod)
GOLANGCI_LINT_VERSION := $(shell awk '$$1=="github.com/golangci/golangci-lint/v2" && $$2 ~ /^v/ {print $$2; exit}' $(TOOLS_DIR)/golangci-lint/go.mod)
KUBE_API_LINTER_VERSION := $(shell awk '$$1=="sigs.k8s.io/kube-api-linter" && $$2 ~ /^v/ {print $$2; exit}' $(TOOLS_DIR)/golangci-lint/go.mod)
# File-name stamp: golangci-lint version + kube-api-linter commit (its
# pseudo-version's last field), e.g. v2.15.0-kal.092fe0c72997.
GOLANGCI_LINT_KAL_VERSION := $(GOLANGCI_LINT_VERSION)-kal.$(lastword $(subst -, ,$(KUBE_API_LINTER_VERSION)))

## Tool binaries (symlinks to the version-stamped files).
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
KWOK ?= $(LOCALBIN)/kwok
ETCD ?= $(LOCALBIN)/etcd
KUBE_APISERVER ?= $(LOCALBIN)/kube-apiserver
KUBE_CONTROLLER_MANAGER ?= $(LOCALBIN)/kube-controller-manager
KUBE_SCHEDULER ?= $(LOCALBIN)/kube-scheduler
KUBECTL ?= $(LOCALBIN)/kubectl
HELM ?= $(LOCALBIN)/helm
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-kal
export CONTROLLER_GEN KUSTOMIZE KWOK HELM ETCD KUBE_APISERVER KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER KUBECTL GOLANGCI_LINT

## kwok's stock stage manifests ship inside the kwok module. KWOK_MODULE_DIR
## is resolved lazily (only when referenced; downloads the module if needed,
## computed once per make run). Stages used by the local control plane:
##   $(KWOK_MODULE_DIR)/kustomize/stage/node/fast        node-initialize.yaml
##   $(KWOK_MODULE_DIR)/kustomize/stage/node/heartbeat   node-heartbeat.yaml
##   $(KWOK_MODULE_DIR)/kustomize/stage/pod/fast         pod-ready.yaml, pod-complete.yaml, pod-delete.yaml
## `make kwok-stages` prints the directories.
KWOK_MODULE_DIR = $(eval KWOK_MODULE_DIR := $(shell cd / && GOWORK=off GOFLAGS= $(GO) mod download -json sigs.k8s.io/kwok@$(KWOK_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'))$(KWOK_MODULE_DIR)
KWOK_STAGES_DIR = $(KWOK_MODULE_DIR)/kustomize/stage

## Build settings.
TOOLS_GOFLAGS ?= -trimpath
# Same as upstream release builds (hack/lib/golang.sh): -s -w, and tags
# selinux,notest,grpcnotrace.
KUBE_BUILD_TAGS ?= selinux,notest,grpcnotrace
KUBE_MINOR = $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
KUBE_VERSION_LDFLAGS = $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(KUBERNETES_VERSION) \
	-X $(p).gitMajor=1 \
	-X $(p).gitMinor=$(KUBE_MINOR) \
	-X $(p).gitCommit= \
	-X $(p).gitTreeState=clean)
KUBE_LDFLAGS ?= -s -w $(KUBE_VERSION_LDFLAGS)
ETCD_LDFLAGS ?= -s -w
# Same as `golangci-lint custom` (minus its -X main.version/date: the wrapper
# reads the versions from the binary's module info).
GOLANGCI_LINT_LDFLAGS ?= -s -w

ETCD_WRAPPER_DEPS := $(TOOLS_DIR)/etcd/go.mod $(TOOLS_DIR)/etcd/go.sum
KUBE_WRAPPER_DEPS := $(TOOLS_DIR)/kubernetes/go.mod $(TOOLS_DIR)/kubernetes/go.sum
GOLANGCI_LINT_WRAPPER_DEPS := $(TOOLS_DIR)/golangci-lint/go.mod $(TOOLS_DIR)/golangci-lint/go.sum $(wildcard $(TOOLS_DIR)/golangci-lint/*.go)

##@ Tools

.PHONY: controller-gen kustomize kwok helm etcd kube-apiserver kube-controller-manager kube-scheduler kubectl golangci-lint-kal envtest-bins control-plane-bins kwok-stages
controller-gen: $(LOCALBIN)/controller-gen ## Build controller-gen into $(LOCALBIN).
kustomize: $(LOCALBIN)/kustomize ## Build kustomize into $(LOCALBIN).
kwok: $(LOCALBIN)/kwok ## Build kwok into $(LOCALBIN).
helm: $(LOCALBIN)/helm ## Build the helm CLI into $(LOCALBIN) (the tests use Helm's Go packages; the CLI is for people).
etcd: $(LOCALBIN)/etcd ## Build etcd into $(LOCALBIN).
kube-apiserver: $(LOCALBIN)/kube-apiserver ## Build kube-apiserver into $(LOCALBIN).
kube-controller-manager: $(LOCALBIN)/kube-controller-manager ## Build kube-controller-manager into $(LOCALBIN).
kube-scheduler: $(LOCALBIN)/kube-scheduler ## Build kube-scheduler into $(LOCALBIN).
kubectl: $(LOCALBIN)/kubectl ## Build kubectl (same version as the control plane) into $(LOCALBIN).
golangci-lint-kal: $(LOCALBIN)/golangci-lint-kal ## Build golangci-lint with the kube-api-linter plugin into $(LOCALBIN).

envtest-bins: $(LOCALBIN)/etcd $(LOCALBIN)/kube-apiserver ## Build etcd + kube-apiserver (envtest; KUBEBUILDER_ASSETS=$(LOCALBIN)).

control-plane-bins: $(LOCALBIN)/etcd $(LOCALBIN)/kube-apiserver $(LOCALBIN)/kube-controller-manager $(LOCALBIN)/kube-scheduler $(LOCALBIN)/kwok $(LOCALBIN)/kubectl ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl.

kwok-stages: ## Print the directories of kwok's stock stage manifests.
	@for d in node/fast node/heartbeat pod/fast; do test -d "$(KWOK_STAGES_DIR)/$$d" || { echo "missing $(KWOK_STAGES_DIR)/$$d" >&2; exit 1; }; echo "$(KWOK_STAGES_DIR)/$$d"; done

# Symlink <name> -> <name>-<version>. make stats through the symlink, so the
# link is up to date exactly when it already points at the current version.
# $(call tools-link,NAME,VERSION)
define tools-link
$(LOCALBIN)/$(1): $(LOCALBIN)/$(1)-$(2)
	ln -sf $(1)-$(2) $$@
endef

# $(call go-install-tool,NAME,PACKAGE,VERSION[,EXTRA_INSTALL_ARGS])
# Installs into a private GOBIN, then moves to the version-stamped name.
define go-install-tool
$(LOCALBIN)/$(1)-$(3):
	@mkdir -p $(LOCALBIN)
	@rm -rf $(LOCALBIN)/.gobin-$(1)
	GOBIN=$(abspath $(LOCALBIN))/.gobin-$(1) GOWORK=off CGO_ENABLED=0 $(GO) install $(TOOLS_GOFLAGS) $(4) $(2)@$(3)
	mv -f $(LOCALBIN)/.gobin-$(1)/$(1) $$@
	@rm -rf $(LOCALBIN)/.gobin-$(1)
$(call tools-link,$(1),$(3))
endef

# $(call go-build-wrapped,NAME,WRAPPER_DIR,PACKAGE,VERSION,DEPS,EXTRA_BUILD_ARGS)
# Builds PACKAGE from inside the wrapper module (its go.mod pins versions).
# Output goes to a temp name first so an interrupted build leaves nothing
# half-written; touch because go may skip rewriting an identical binary.
define go-build-wrapped
$(LOCALBIN)/$(1)-$(4): $(5)
	@mkdir -p $(LOCALBIN)
	cd $(2) && GOWORK=off CGO_ENABLED=0 $(GO) build $(TOOLS_GOFLAGS) $(6) -o $(abspath $(LOCALBIN))/.$(1).tmp $(3)
	mv -f $(LOCALBIN)/.$(1).tmp $$@
	touch $$@
$(call tools-link,$(1),$(4))
endef

$(eval $(call go-install-tool,controller-gen,sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION)))
$(eval $(call go-install-tool,kustomize,sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION)))
$(eval $(call go-install-tool,kwok,sigs.k8s.io/kwok/cmd/kwok,$(KWOK_VERSION)))
# -X as in helm's own Makefile: `helm version` reports the release, and the Kubernetes version
# that `helm template` and `helm lint` assume without a cluster is the one the release pairs with
# (Helm's default otherwise is 1.20, which the chart's kubeVersion refuses).
HELM_K8S_LDFLAGS = $(foreach p,helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules,-X $(p).k8sVersionMajor=1 -X $(p).k8sVersionMinor=$(KUBE_MINOR))
$(eval $(call go-install-tool,helm,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),-ldflags '-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) $(HELM_K8S_LDFLAGS)'))

$(eval $(call go-build-wrapped,etcd,$(TOOLS_DIR)/etcd,go.etcd.io/etcd/server/v3,$(ETCD_VERSION),$(ETCD_WRAPPER_DEPS),-ldflags '$(ETCD_LDFLAGS)'))
$(foreach b,kube-apiserver kube-controller-manager kube-scheduler kubectl,\
  $(eval $(call go-build-wrapped,$(b),$(TOOLS_DIR)/kubernetes,k8s.io/kubernetes/cmd/$(b),$(KUBERNETES_VERSION),$(KUBE_WRAPPER_DEPS),-tags=$(KUBE_BUILD_TAGS) -ldflags '$(KUBE_LDFLAGS)')))
$(eval $(call go-build-wrapped,golangci-lint-kal,$(TOOLS_DIR)/golangci-lint,.,$(GOLANGCI_LINT_KAL_VERSION),$(GOLANGCI_LINT_WRAPPER_DEPS),-ldflags '$(GOLANGCI_LINT_LDFLAGS)'))

.DEFAULT_GOAL := $(TOOLS_MK_SAVED_DEFAULT_GOAL)
