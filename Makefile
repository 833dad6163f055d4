# probe-redirect-operator Makefile (kubebuilder go/v4 targets, tools built from Go modules).

VERSION ?= 0.1.0
IMG ?= ghcr.io/proberedirect/probe-redirect-operator:v$(VERSION)
LOCALBIN ?= $(CURDIR)/bin
GOTEST_FLAGS ?= -count=1

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and the ClusterRole from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods from the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint-kal ## Run golangci-lint with the Kubernetes API linter (.golangci.yml) over the module, test/argocd, test/prometheus, test/olmvalidate, test/istio and test/helm.
	@rc=0; \
	echo "$(GOLANGCI_LINT) run ./..."; \
	$(GOLANGCI_LINT) run ./... || rc=1; \
	for m in test/argocd test/prometheus test/olmvalidate test/istio test/helm; do \
		echo "cd $$m && $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./..."; \
		(cd $$m && $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...) || rc=1; \
	done; \
	exit $$rc

.PHONY: test
test: envtest-bins controller-gen kustomize vet ## Run every unit and integration test (real etcd + kube-apiserver), then test-helm, test-prometheus, test-olm-validate and test-istio; fails when generated files are stale.
	KUBEBUILDER_ASSETS="$(LOCALBIN)" CONTROLLER_GEN="$(CONTROLLER_GEN)" KUSTOMIZE="$(KUSTOMIZE)" go test $(GOTEST_FLAGS) ./... -coverprofile cover.out
	$(MAKE) --no-print-directory test-helm
	$(MAKE) --no-print-directory test-prometheus
	$(MAKE) --no-print-directory test-olm-validate
	$(MAKE) --no-print-directory test-istio

.PHONY: test-istio
test-istio: ## Cross-check internal/mesh/istio with Istio's own code (separate Go module test/istio: PeerAuthentication resolution, the chart's webhooks and the injector).
	cd test/istio && go vet ./... && go test $(GOTEST_FLAGS) ./...

.PHONY: test-helm
test-helm: envtest-bins kustomize ## Check dist/chart with Helm's own code (separate Go module test/helm): lint, template, install into a real kube-apiserver, up to date.
	cd test/helm && go vet -tags e2e ./... && KUBEBUILDER_ASSETS="$(LOCALBIN)" KUSTOMIZE="$(KUSTOMIZE)" go test $(GOTEST_FLAGS) ./...

FUZZTIME ?= 10m
FUZZ_TARGETS = internal/mesh/istio:FuzzAnalyzeAndVerify internal/unhealthy:FuzzUnhealthyEvent internal/mesh/istio:FuzzResolver internal/plan:FuzzSelector
.PHONY: fuzz
fuzz: ## Fuzz probe analysis and live-pod verification, the Unhealthy event parser, the mTLS resolution and selector handling, FUZZTIME each (10m by hand; CI runs a short FUZZTIME).
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "go test ./$$pkg -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME)"; \
		go test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

CHAOS_RUN ?= .
.PHONY: test-chaos
test-chaos: control-plane-bins istio-injector build build-installer ## Reliability tests on local control planes: SIGKILLs mid-rollout, an API server outage, two replicas with leader election, concurrent edits, a mesh installed after the operator (CHAOS_RUN selects tests; CHAOS_* sizes).
	KWOK_STAGES_DIR="$(KWOK_STAGES_DIR)" MANAGER="$(LOCALBIN)/manager" go test -tags chaos $(GOTEST_FLAGS) -v -timeout 40m -run '$(CHAOS_RUN)' ./test/chaos/

BENCH_SCALE ?= full
BENCH_MESH ?= double
# Istio's injector is built only when the benchmark runs it (BENCH_MESH=istio).
BENCH_MESH_BINS = $(if $(filter istio,$(BENCH_MESH)),istio-injector,)
.PHONY: bench
bench: control-plane-bins $(BENCH_MESH_BINS) build build-installer ## Benchmark the operator at cluster scale on a local control plane (issue 13): converge vs. its client-go floor and kubectl, idle writes, cold start, API cost, peak RSS. BENCH_SCALE=small|full (default full); prints a table and writes bench/results.json and bench/results.md.
	BENCH_SCALE="$(BENCH_SCALE)" BENCH_MESH="$(BENCH_MESH)" KWOK_STAGES_DIR="$(KWOK_STAGES_DIR)" MANAGER="$(LOCALBIN)/manager" \
		go run -tags bench ./test/bench

.PHONY: test-argocd
test-argocd: envtest-bins ## Check the Argo CD health check, the argocd-cm snippet and Argo CD's diff of our annotation, with Argo CD's own code: v3.3 (test/argocd/go.mod), then v2.14 (argocd-v2.14.mod).
	cd test/argocd && KUBEBUILDER_ASSETS="$(LOCALBIN)" go test ./... $(GOTEST_FLAGS)
	cd test/argocd && KUBEBUILDER_ASSETS="$(LOCALBIN)" go test -modfile=argocd-v2.14.mod ./... $(GOTEST_FLAGS)

.PHONY: test-prometheus
test-prometheus: envtest-bins ## Unit-test the alerts (config/prometheus/rules.yaml) and check the Grafana dashboard's queries with Prometheus's own code, against what a running operator serves (separate Go module).
	cd test/prometheus && KUBEBUILDER_ASSETS="$(LOCALBIN)" go test ./... $(GOTEST_FLAGS)

.PHONY: test-olm-validate
test-olm-validate: ## Validate the OLM bundle (bundle/) with operator-framework/api's own validators, those of `operator-sdk bundle validate --select-optional suite=operatorframework`; warnings fail too (separate Go module).
	cd test/olmvalidate && go test $(GOTEST_FLAGS) ./...

.PHONY: argocd-cm
argocd-cm: ## Regenerate config/argocd/argocd-cm-health-patch.yaml from health.lua.
	cd test/argocd && go run ./cmd/gen-argocd-cm

##@ Build

.PHONY: build
build: ## Build the manager, the probe-redirect CLI and its kubectl plugin name kubectl-prp into bin/.
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o $(LOCALBIN)/manager .
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o $(LOCALBIN)/probe-redirect ./cmd/probe-redirect
	cp $(LOCALBIN)/probe-redirect $(LOCALBIN)/kubectl-prp

.PHONY: run
run: ## Run the operator against the cluster in ~/.kube/config.
	go run . --leader-elect=false

.PHONY: build-installer
build-installer: manifests generate kustomize ## Render the CRD and the operator's deployment into dist/install.yaml.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

##@ Local control plane

CLUSTER_NAME ?= dev
CLUSTER_DIR ?= $(CURDIR)/.local/clusters/$(CLUSTER_NAME)
CLUSTER_FLAGS ?=
# Istio's injector is built unless CLUSTER_FLAGS picks the double or no mesh.
CLUSTER_MESH_BINS = $(if $(filter --mesh=double --mesh-double --mesh=none --mesh=kuma --mesh=double+kuma,$(CLUSTER_FLAGS)),,istio-injector)
LOCALCLUSTER ?= $(LOCALBIN)/localcluster

.PHONY: localcluster
localcluster: ## Build the local control plane launcher.
	go build -o $(LOCALCLUSTER) ./test/localcluster/cmd/localcluster

.PHONY: istio-injector
istio-injector: ## Build Istio's own sidecar injector into bin/ (test/istio module: istio.io/istio's pkg/kube/inject, its chart rendered by its own renderer, its PeerAuthentication resolution).
	cd test/istio && go build -o $(LOCALBIN)/istio-injector ./cmd/istio-injector

.PHONY: cluster-up
cluster-up: control-plane-bins $(CLUSTER_MESH_BINS) localcluster ## Start a local control plane (etcd, apiserver, controller-manager, scheduler, kwok nodes, Istio's injector; CLUSTER_FLAGS=--mesh=double|kuma|istio+kuma|none for the double, Kuma's injector double, both, or none) in the background.
	$(LOCALCLUSTER) up --name $(CLUSTER_NAME) --dir $(CLUSTER_DIR) --kwok-stages $(KWOK_STAGES_DIR) $(CLUSTER_FLAGS)

.PHONY: cluster-down
cluster-down: localcluster ## Stop the local control plane.
	$(LOCALCLUSTER) down --name $(CLUSTER_NAME) --dir $(CLUSTER_DIR)

.PHONY: cluster-status
cluster-status: localcluster ## Say whether the local control plane runs.
	$(LOCALCLUSTER) status --name $(CLUSTER_NAME) --dir $(CLUSTER_DIR)

.PHONY: test-e2e
test-e2e: control-plane-bins istio-injector build build-installer controller-gen kustomize ## End-to-end tests: local control planes, the operator as a process, the documented mesh scenarios, helm install of dist/chart.
	KWOK_STAGES_DIR="$(KWOK_STAGES_DIR)" MANAGER="$(LOCALBIN)/manager" go test -tags e2e $(GOTEST_FLAGS) -timeout 40m ./test/...
	cd test/helm && KWOK_STAGES_DIR="$(KWOK_STAGES_DIR)" MANAGER="$(LOCALBIN)/manager" go test -tags e2e $(GOTEST_FLAGS) -timeout 20m ./e2e/...

##@ OLM

.PHONY: bundle
bundle: manifests kustomize ## Generate the OLM bundle (bundle/, bundle.Dockerfile) from config/ for IMG and VERSION.
	go run ./hack/bundle --kustomize $(KUSTOMIZE) --version $(VERSION) --image $(IMG) --out bundle

##@ Helm

.PHONY: helm-chart
helm-chart: manifests kustomize ## Generate the Helm chart (dist/chart) from config/ and the manager's flags, for IMG and VERSION.
	go run ./hack/helmchart --kustomize $(KUSTOMIZE) --version $(VERSION) --image $(IMG) --out dist/chart

##@ Deployment

.PHONY: install
install: ## Install the CRD into the cluster in ~/.kube/config.
	kubectl apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: ## Remove the CRD from the cluster in ~/.kube/config.
	kubectl delete --ignore-not-found -f config/crd/bases

##@ Demo

DEMO_KEEP ?= 1

# MESH picks the demo's mesh: istio (Istio's own injector) or kuma (the Kong Mesh version, with the
# double of Kuma's injector).
MESH ?= istio
DEMO_MESH_BINS = $(if $(filter kuma,$(MESH)),,istio-injector)

.PHONY: demo
demo: control-plane-bins $(DEMO_MESH_BINS) build localcluster ## Run the demo on a local control plane: nginx broken by STRICT mTLS, fixed by a ProbeRedirectPolicy (MESH=istio|kuma). DEMO_KEEP=0 stops everything at the end.
	LOCALBIN="$(LOCALBIN)" LOCALCLUSTER="$(LOCALCLUSTER)" MANAGER="$(LOCALBIN)/manager" KWOK_STAGES_DIR="$(KWOK_STAGES_DIR)" \
		CLUSTER_NAME=demo CLUSTER_DIR="$(CURDIR)/.local/clusters/demo" DEMO_KEEP="$(DEMO_KEEP)" MESH="$(MESH)" hack/demo.sh

.PHONY: demo-down
demo-down: localcluster ## Stop the demo's operator, then its control plane.
	LOCALBIN="$(LOCALBIN)" LOCALCLUSTER="$(LOCALCLUSTER)" \
		CLUSTER_NAME=demo CLUSTER_DIR="$(CURDIR)/.local/clusters/demo" hack/demo.sh down

include hack/tools.mk
