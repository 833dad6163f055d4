#!/usr/bin/env bash
# hack/demo.sh -- the demo behind `make demo` (and `make demo-down`).
#
# It starts a local control plane (test/localcluster: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok fake nodes, and Istio's own
# sidecar injector -- bin/istio-injector, built from the istio.io/istio module
# -- whose mesh default leaves probe rewriting off),
# installs the CRD, starts the operator as a local process, deploys the nginx
# example of Alibaba Cloud ASM's docs under STRICT mTLS, shows its pods stuck
# unready with "Warning Unhealthy ... connection reset by peer", applies a
# ProbeRedirectPolicy, and shows the rewritten probes and the policy's status.
#
# Usage:
#   hack/demo.sh        run the demo (a demo cluster that is already running
#                       is stopped first, so every run starts from scratch)
#   hack/demo.sh down   stop the demo's operator, then its control plane
#
# Environment (relative paths are relative to the repository root):
#   KWOK_STAGES_DIR  kwok's kustomize/stage folder; required to run the demo
#                    (make passes it; see `make -s kwok-stages`)
#   LOCALBIN         bin                folder with kubectl
#   LOCALCLUSTER     $LOCALBIN/localcluster
#   MANAGER          $LOCALBIN/manager  the operator binary (make build)
#   CLUSTER_NAME     demo
#   CLUSTER_DIR      .local/clusters/$CLUSTER_NAME
#   DEMO_KEEP        1: leave the cluster and the operator running at the end;
#                    0: stop everything at the end, and after a failure (CI)
#   DEMO_TIMEOUT     60: seconds any single command may take
#   MESH             istio (Istio's own injector) or kuma (the double of Kuma's
#                    v2.14.3 injector, proven against Kuma's golden files: the
#                    Kong Mesh version of the same story)
#
# Every command the demo runs is printed first, as "+ command". Each also runs
# under `timeout --foreground` (not printed), so no step can hang; waits that
# poll say how long they wait at most. Any failure exits non-zero with the
# last lines of the relevant log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

# short PATH: PATH relative to the repository root when it is inside it.
short() {
	case $1 in
	"$ROOT"/*) printf '%s\n' "${1#"$ROOT"/}" ;;
	*) printf '%s\n' "$1" ;;
	esac
}
# absolute PATH (lexically cleaned, no symlinks resolved: localcluster
# matches its processes by this exact string).
absolute() {
	case $1 in
	/*) realpath -sm -- "$1" ;;
	*) realpath -sm -- "$ROOT/$1" ;;
	esac
}

LOCALBIN=$(short "$(absolute "${LOCALBIN:-bin}")")
LOCALCLUSTER=$(short "$(absolute "${LOCALCLUSTER:-$LOCALBIN/localcluster}")")
MANAGER=$(short "$(absolute "${MANAGER:-$LOCALBIN/manager}")")
CLUSTER_NAME=${CLUSTER_NAME:-demo}
CLUSTER_DIR=$(absolute "${CLUSTER_DIR:-.local/clusters/$CLUSTER_NAME}")
DEMO_KEEP=${DEMO_KEEP:-1}
DEMO_TIMEOUT=${DEMO_TIMEOUT:-60}
MESH=${MESH:-istio}
case $MESH in
istio)
	SIDECAR=istio-proxy
	MESH_FLAGS=(--mesh=istio)
	SHOP=hack/demo/shop.yaml
	;;
kuma)
	SIDECAR=kuma-sidecar
	MESH_FLAGS=(--mesh=kuma --kuma-probe-proxy-port=0)
	SHOP=hack/demo/kuma/shop.yaml
	;;
*)
	echo "MESH must be istio or kuma, not \"$MESH\"" >&2
	exit 2
	;;
esac
KUBECONFIG_FILE=$CLUSTER_DIR/kubeconfig
OP_LOG=$CLUSTER_DIR/logs/operator.log
OP_PID=$CLUSTER_DIR/pids/operator.pid
SUPERVISOR_LOG=$CLUSTER_DIR/logs/supervisor.log
NS=shop
CRD=proberedirectpolicies.mesh.proberedirect.io

case $DEMO_KEEP in
0 | 1) ;;
*)
	echo "DEMO_KEEP must be 0 or 1, not \"$DEMO_KEEP\"" >&2
	exit 2
	;;
esac

# kubectl below is $LOCALBIN/kubectl (same version as the control plane).
PATH=$(absolute "$LOCALBIN"):$PATH
export PATH

# ---------------------------------------------------------------- helpers

# quote ARGS: the arguments as a shell command line, quoted only where needed.
quote() {
	local a pre out=()
	for a in "$@"; do
		pre=
		if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
			out+=("$a")
			continue
		fi
		if [[ $a =~ ^(-*[A-Za-z0-9_.]+=)(.*)$ ]]; then # name='value'
			pre=${BASH_REMATCH[1]}
			a=${BASH_REMATCH[2]}
		fi
		out+=("$pre'${a//\'/\'\\\'\'}'")
	done
	printf '%s\n' "${out[*]}"
}

# run [-t SECONDS] CMD ARGS...: print the command, run it with a time limit.
run() {
	local t=$DEMO_TIMEOUT
	if [[ $1 == -t ]]; then
		t=$2
		shift 2
	fi
	echo "+ $(quote "$@")"
	timeout --foreground "$t" "$@"
}

# runsh [-t SECONDS] 'PIPELINE': print a pipeline, run it with a time limit.
runsh() {
	local t=$DEMO_TIMEOUT
	if [[ $1 == -t ]]; then
		t=$2
		shift 2
	fi
	echo "+ $1"
	timeout --foreground "$t" bash -o pipefail -c "$1"
}

# q CMD ARGS...: run quietly (for polling), with a time limit.
q() { timeout --foreground "$DEMO_TIMEOUT" "$@"; }

say() { printf '%s\n' "$@"; }

fail() {
	say "" "ERROR: $*" >&2
	exit 1
}

# tail_log FILE [N]: the last N lines of a log, framed.
tail_log() {
	local n=${2:-40}
	if [[ -s $1 ]]; then
		say "---- last $n lines of $1" >&2
		tail -n "$n" "$1" >&2
		say "----" >&2
	else
		say "($1 is empty or missing)" >&2
	fi
}

now_ms() { date +%s%3N; }
secs() { # milliseconds -> "12.3s"
	local ms=$1
	printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

TOTAL_STEPS=7
STEP=0
STEP_TITLE=
STEP_START=0
DEMO_START=$(now_ms)
TIMES=()

end_step() {
	if ((STEP > 0)) && [[ -n $STEP_TITLE ]]; then
		TIMES+=("$(printf '  %d. %-58s %6s' "$STEP" "$STEP_TITLE" "$(secs $(($(now_ms) - STEP_START)))")")
		STEP_TITLE=
	fi
}

# step TITLE [LINE...]: start the next step; the LINEs explain it.
step() {
	end_step
	STEP=$((STEP + 1))
	STEP_TITLE=$1
	STEP_START=$(now_ms)
	printf '\n==> [%d/%d] %s\n' "$STEP" "$TOTAL_STEPS" "$1"
	shift
	if (($#)); then
		printf '    %s\n' "$@"
	fi
}

print_times() {
	end_step
	say "" "Time per step:"
	printf '%s\n' "${TIMES[@]}"
	printf '     %-58s %6s\n' "total" "$(secs $(($(now_ms) - DEMO_START)))"
}

# wait_until SECONDS WHAT CMD...: poll CMD every 2s until it succeeds.
wait_until() {
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + limit))
	until "$@"; do
		if ((SECONDS >= deadline)); then
			fail "timed out after ${limit}s waiting for $what"
		fi
		sleep 2
	done
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[[ ${st:0:1} != Z ]]
}

# operator_pid: the pid of the demo's operator, if it runs.
operator_pid() {
	local pid
	pid=$(cat "$OP_PID" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--kubeconfig=$KUBECONFIG_FILE " || return 1
	echo "$pid"
}

# leftovers: processes of this demo still running (control plane, supervisor,
# operator), one "pid command" line each.
leftovers() {
	local f pid cmd args
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		args=()
		mapfile -d '' -t args 2>/dev/null <"$f" || continue
		((${#args[@]})) || continue
		cmd="${args[*]}"
		case ${args[0]##*/} in
		localcluster | etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kwok | istio-injector | manager) ;;
		*) continue ;;
		esac
		case " $cmd" in
		*" $CLUSTER_DIR "* | *"$CLUSTER_DIR/"*) printf '  pid %s: %.160s\n' "$pid" "$cmd" ;;
		esac
	done
}

stop_operator() {
	local pid i
	if ! pid=$(operator_pid); then
		say "operator: not running"
		rm -f "$OP_PID"
		return 0
	fi
	echo "+ kill -TERM $pid   # the operator, from $(short "$OP_PID")"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do # controller-runtime's graceful shutdown takes at most 30s
		alive "$pid" || break
		sleep 0.2
	done
	if alive "$pid"; then
		echo "+ kill -KILL $pid   # still running after 30s"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.2
		done
		alive "$pid" && fail "the operator (pid $pid) survived SIGKILL"
	fi
	rm -f "$OP_PID"
	say "operator stopped"
}

stop_cluster() {
	run -t 150 "$LOCALCLUSTER" down --name "$CLUSTER_NAME" --dir "$CLUSTER_DIR"
}

# down: stop the operator, then the control plane, and check nothing is left.
down() {
	local left
	stop_operator
	stop_cluster
	left=$(leftovers)
	if [[ -n $left ]]; then
		say "ERROR: processes of the demo are still running:" "$left" >&2
		return 1
	fi
	say "nothing of the demo is running any more"
}

# print_look_around [HEADING]
print_look_around() {
	say "" "${1:-The cluster and the operator keep running. Look around:}" \
		"  export KUBECONFIG=$KUBECONFIG_FILE" \
		"  $LOCALBIN/kubectl get prp -A" \
		"  $LOCALBIN/kubectl get pods,events -n $NS" \
		"  $LOCALBIN/kubectl describe prp nginx -n $NS" \
		"  tail -f $(short "$OP_LOG")   # the operator's log" \
		"  ls $(short "$CLUSTER_DIR")/logs/   # the log of every process" \
		"Stop everything:" \
		"  make demo-down   # or: hack/demo.sh down"
}

# --------------------------------------------------------------- down mode

case ${1:-} in
down)
	say "==> Stopping the demo in $(short "$CLUSTER_DIR")"
	down
	exit
	;;
"") ;;
*)
	echo "usage: hack/demo.sh [down]" >&2
	exit 2
	;;
esac

# --------------------------------------------------------------- the demo

: "${KWOK_STAGES_DIR:?is required: the kustomize/stage folder of the kwok module (make demo sets it; see make -s kwok-stages)}"
[[ -d $KWOK_STAGES_DIR ]] || fail "KWOK_STAGES_DIR=$KWOK_STAGES_DIR is not a folder"
BINS=("$LOCALCLUSTER" "$MANAGER" "$LOCALBIN/kubectl")
if [[ $MESH == istio ]]; then
	BINS+=("$LOCALBIN/istio-injector")
fi
for b in "${BINS[@]}"; do
	[[ -x $b ]] || fail "$b is missing; run: make control-plane-bins istio-injector build localcluster"
done

OPERATOR_STARTED=0
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if ((rc == 130 || rc == 143)); then
		say "" "demo interrupted in step $STEP/$TOTAL_STEPS: $STEP_TITLE" >&2
	elif ((rc != 0)); then
		say "" "demo FAILED (exit code $rc) in step $STEP/$TOTAL_STEPS: $STEP_TITLE" >&2
		if ((STEP == 1)); then
			tail_log "$SUPERVISOR_LOG" 30
		fi
		if ((OPERATOR_STARTED)); then
			tail_log "$OP_LOG" 40
		fi
	fi
	if ((rc != 0)); then
		if ((DEMO_KEEP == 0)); then
			say "" "==> Stopping everything (DEMO_KEEP=0)"
			down || true
		elif ((STEP > 1)); then
			print_look_around "Whatever of the demo was started keeps running (DEMO_KEEP=1). Look around:"
		fi
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if operator_pid >/dev/null || [[ -n $(leftovers) ]] ||
	q "$LOCALCLUSTER" status --name "$CLUSTER_NAME" --dir "$CLUSTER_DIR" >/dev/null 2>&1; then
	say "==> A demo cluster is already running in $(short "$CLUSTER_DIR"); stopping it first, so that the demo starts from scratch"
	down
fi

if [[ $MESH == istio ]]; then
	step "Start a local control plane" \
		"etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok playing the kubelet" \
		"of 2 fake nodes, and Istio's own sidecar injector (istio.io/istio's webhook and chart)." \
		"As in Alibaba Cloud ASM, the mesh does not rewrite probes by default: a pod opts in with an annotation."
else
	step "Start a local control plane" \
		"etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok playing the kubelet" \
		"of 2 fake nodes, Kuma's CRDs, and the double of Kuma's v2.14.3 sidecar injector (Kuma's Go" \
		"module is not served; the double is proven against Kuma's own golden files). Its control plane" \
		"has the application probe proxy off by default, as after an upgrade from Kuma before 2.9."
fi
run -t 400 "$LOCALCLUSTER" up --name "$CLUSTER_NAME" --dir "$CLUSTER_DIR" --kwok-stages "$KWOK_STAGES_DIR" "${MESH_FLAGS[@]}"
export KUBECONFIG=$KUBECONFIG_FILE
echo "+ export KUBECONFIG=$KUBECONFIG"
run kubectl get nodes
run kubectl get mutatingwebhookconfigurations

step "Install the ProbeRedirectPolicy CRD"
run kubectl apply --server-side -f config/crd/bases
run kubectl wait --for=condition=Established "crd/$CRD" --timeout=60s

step "Start the operator" "$MANAGER runs as a local process against the demo cluster."
mkdir -p "$(dirname "$OP_LOG")" "$(dirname "$OP_PID")"
OP_ARGS=(--kubeconfig="$KUBECONFIG" --metrics-bind-address=0 --health-probe-bind-address=0 --leader-elect=false)
echo "+ setsid $(quote "$MANAGER" "${OP_ARGS[@]}") >$(short "$OP_LOG") 2>&1 </dev/null &"
setsid "$MANAGER" "${OP_ARGS[@]}" >"$OP_LOG" 2>&1 </dev/null &
echo $! >"$OP_PID"
OPERATOR_STARTED=1
say "operator pid $(cat "$OP_PID") (in $(short "$OP_PID")), log $(short "$OP_LOG")"
deadline=$((SECONDS + 60))
until grep -q '"Starting workers"' "$OP_LOG"; do
	operator_pid >/dev/null || fail "the operator exited before it started its workers"
	((SECONDS < deadline)) || fail "the operator did not log \"Starting workers\" within 60s"
	sleep 0.5
done
run grep -F '"Starting workers"' "$(short "$OP_LOG")"

step "The problem: nginx under STRICT mTLS never becomes Ready" \
	"Namespace $NS is in the mesh and under STRICT mTLS. nginx (2 replicas) has the HTTP" \
	"readiness probe of Alibaba Cloud ASM's example: GET :80/index.html with a custom header."
run kubectl apply -f "$SHOP"
say "Waiting (at most 120s) until the kubelet (kwok) reports Unhealthy for both pods ..."
unhealthy_pods() {
	local n
	n=$(q kubectl get events -n "$NS" --field-selector reason=Unhealthy \
		-o jsonpath='{range .items[*]}{.involvedObject.name}{"\n"}{end}' | sort -u | grep -c .) || return 1
	((n >= 2))
}
wait_until 120 "Unhealthy events for both nginx pods" unhealthy_pods
run kubectl get pods -n "$NS"
say "(READY 1/2: the $SIDECAR sidecar is ready, nginx is not.)"
run kubectl get events -n "$NS" --field-selector reason=Unhealthy
POD=$(q kubectl get pods -n "$NS" -l app=nginx -o jsonpath='{.items[0].metadata.name}')
runsh "kubectl describe pod -n $NS $POD | sed -n '/^Events:/,\$p'"
if [[ $MESH == istio ]]; then
	say "" "Istio's injector added its init container and its sidecar to the pod:"
else
	say "" "Kuma's injector (the double) added kuma-init and kuma-sidecar to the pod:"
fi
run kubectl get pod -n "$NS" "$POD" -o jsonpath='{range .spec.initContainers[*]}{.name}{"\t"}{.image}{"\n"}{end}{range .spec.containers[*]}{.name}{"\t"}{.image}{"\n"}{end}'
say "The kubelet probes nginx's port 80 directly; the sidecar, under STRICT mTLS, resets the connection:"
run kubectl get pod -n "$NS" "$POD" -o jsonpath='{.spec.containers[?(@.name=="nginx")].readinessProbe}'
echo

step "The fix: a ProbeRedirectPolicy for app=nginx" \
	"The operator annotates the Deployment's pod template, rolls it out and verifies the new pods."
run kubectl apply -f hack/demo/fix/policy.yaml
if ! run -t 130 kubectl wait --for=condition=Ready proberedirectpolicy/nginx -n "$NS" --timeout=120s; then
	run kubectl get prp -n "$NS" -o yaml || true
	fail "the ProbeRedirectPolicy did not become Ready within 120s"
fi
run -t 130 kubectl rollout status deployment/nginx -n "$NS" --timeout=120s

step "The result: rewritten probes, Ready pods"
run kubectl get proberedirectpolicies -n "$NS"
# The old pods leave within seconds (kwok's pod-delete stage).
two_pods() {
	local n
	n=$(q kubectl get pods -n "$NS" -o name | grep -c .) || return 1
	((n == 2))
}
wait_until 60 "the old pods to be gone" two_pods
run kubectl get pods -n "$NS"
say "" "The operator annotated the Deployment's pod template:"
run kubectl get deployment nginx -n "$NS" -o jsonpath='{.spec.template.metadata.annotations}'
echo
POD=$(q kubectl get pods -n "$NS" -l app=nginx -o jsonpath='{.items[0].metadata.name}')
if [[ $MESH == istio ]]; then
	say "" "The injector rewrote the probe to the agent's status port, keeping the header ..."
	run kubectl get pod -n "$NS" "$POD" -o jsonpath='{.spec.containers[?(@.name=="nginx")].readinessProbe}'
	echo
	say "... and handed the original probe to the agent (istio-proxy) in ISTIO_KUBE_APP_PROBERS:"
	run kubectl get pod -n "$NS" "$POD" -o jsonpath='{.spec.containers[?(@.name=="istio-proxy")].env[?(@.name=="ISTIO_KUBE_APP_PROBERS")].value}'
	echo
else
	say "" "The injector rewrote the probe onto kuma-dp's application probe proxy (port 9001, path /<port><path>), keeping the header:"
	run kubectl get pod -n "$NS" "$POD" -o jsonpath='{.spec.containers[?(@.name=="nginx")].readinessProbe}'
	echo
	say "... and recorded the port it resolved on the pod:"
	run kubectl get pod -n "$NS" "$POD" -o jsonpath='{.metadata.annotations.kuma\.io/application-probe-proxy-port}'
	echo
fi
say "" "The policy's status:"
runsh "kubectl get proberedirectpolicy nginx -n $NS -o yaml | sed -n '/^status:/,\$p'"
say "" "The policy's Events:"
run kubectl get events -n "$NS" --field-selector involvedObject.kind=ProbeRedirectPolicy

if ((DEMO_KEEP == 1)); then
	step "Keep the cluster and the operator running (DEMO_KEEP=1)"
	run "$LOCALCLUSTER" status --name "$CLUSTER_NAME" --dir "$CLUSTER_DIR"
	print_look_around
else
	step "Stop everything (DEMO_KEEP=0)"
	down
	OPERATOR_STARTED=0
fi
print_times
