package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/proberedirect/probe-redirect-operator/hack/internal/manifests"
)

// testHelp is the manager's -h output as Go's flag package prints it.
const testHelp = `Usage of manager:
  -concurrency int
    	How many policies are reconciled at once. (default 2)
  -enable-http2
    	Allow HTTP/2 on the metrics server.
  -event-coalesce duration
    	Reconciles wait this long. (default 2s)
  -health-probe-bind-address string
    	Address the health and readiness endpoints bind to. (default ":8081")
  -kubeconfig string
    	Paths to a kubeconfig. Only required if out-of-cluster.
  -kuma-system-namespace string
    	Kuma's system namespace. (default "kuma-system")
  -leader-elect
    	Elect a leader.
  -leader-election-namespace string
    	Namespace of the leader-election Lease.
  -metrics-bind-address string
    	Address the metrics endpoint binds to; 0 turns it off. (default "0")
  -metrics-secure
    	Serve metrics over HTTPS. (default true)
  -root-namespace string
    	Istio's root namespace. (default "istio-system")
  -status-port int
    	The mesh agent's status port. (default 15020)
  -unhealthy-window duration
    	How long an Unhealthy event counts. (default 10m0s)
  -zap-devel
    	Development Mode defaults(encoder=consoleEncoder,logLevel=Debug,stackTraceLevel=Warn). Production Mode defaults(encoder=jsonEncoder,logLevel=Info,stackTraceLevel=Error)
  -zap-encoder value
    	Zap log encoding (one of 'json' or 'console')
  -zap-log-level value
    	Zap Level to configure the verbosity of logging.
  -zap-stacktrace-level value
    	Zap Level at and above which stacktraces are captured.
  -zap-time-encoding value
    	Zap time encoding.
`

const testInstall = `
apiVersion: v1
kind: Namespace
metadata: {name: op-system, labels: {app.kubernetes.io/managed-by: kustomize, pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec: {group: example.com, names: {kind: Thing, plural: things}, versions: [{name: v1}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: op-controller-manager, namespace: op-system, labels: {app.kubernetes.io/managed-by: kustomize, app.kubernetes.io/name: op}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: op-leader-election-role, namespace: op-system}
rules: [{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: op-leader-election-rolebinding, namespace: op-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: op-leader-election-role}
subjects: [{kind: ServiceAccount, name: op-controller-manager, namespace: op-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op-viewer-role, labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}}
rules: [{apiGroups: [example.com], resources: [things], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op-metrics-auth-role}
rules: [{apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op-metrics-auth-rolebinding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-metrics-auth-role}
subjects: [{kind: ServiceAccount, name: op-controller-manager, namespace: op-system}]
---
apiVersion: v1
kind: Service
metadata: {name: op-metrics-service, namespace: op-system}
spec:
  ports: [{name: https, port: 8443, targetPort: 8443}]
  selector: {app.kubernetes.io/name: op}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: op-controller-manager, namespace: op-system, labels: {control-plane: controller-manager}}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: op}}
  template:
    metadata: {labels: {app.kubernetes.io/name: op}}
    spec:
      serviceAccountName: op-controller-manager
      securityContext: {runAsNonRoot: true}
      containers:
      - name: manager
        image: controller:latest
        args: [--metrics-bind-address=:8443, --leader-elect, --health-probe-bind-address=:8081]
        livenessProbe: {httpGet: {path: /healthz, port: 8081}}
        readinessProbe: {httpGet: {path: /readyz, port: 8081}}
        resources: {limits: {memory: 64Mi}}
`

const testMonitor = `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: metrics-monitor, namespace: system}
spec:
  endpoints: [{path: /metrics, port: https, scheme: https, bearerTokenFile: /token, tlsConfig: {insecureSkipVerify: true}}]
  selector: {matchLabels: {app.kubernetes.io/name: op}}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: alerts}
spec:
  groups: [{name: g, rules: [{alert: A, expr: up == 0, annotations: {summary: "{{ $labels.job }} is down"}}]}]
`

const testNetworkPolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-metrics-traffic, namespace: system}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: op}}
  ingress: [{ports: [{port: 8443}]}]
`

const testCSV = `
apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata: {name: op.v0.0.0, annotations: {repository: https://example.com/op}}
spec:
  minKubeVersion: 1.30.0
  keywords: [things]
  provider: {url: https://example.com}
  maintainers: [{name: Us, email: us@example.com}]
`

var testOptions = options{version: "1.2.3", image: "example.com/op:v1.2.3", chartName: "op"}

func testInputs(t *testing.T, install string) inputs {
	t.Helper()
	g := NewWithT(t)
	decode := func(docs string) []*unstructured.Unstructured {
		objs, err := manifests.Decode([]byte(docs))
		g.Expect(err).NotTo(HaveOccurred())
		return objs
	}
	flags, err := parseFlagHelp([]byte(testHelp))
	g.Expect(err).NotTo(HaveOccurred())
	return inputs{
		install: decode(install), prometheus: decode(testMonitor), networkPolicy: decode(testNetworkPolicy),
		flags: flags, csvBase: decode(testCSV)[0], argocdHealth: []byte("data: {}\n"),
	}
}

func TestParseFlagHelpReadsDefaultsAndUsage(t *testing.T) {
	g := NewWithT(t)
	flags, err := parseFlagHelp([]byte(testHelp))
	g.Expect(err).NotTo(HaveOccurred())
	byName := map[string]managerFlag{}
	for _, f := range flags {
		byName[f.name] = f
	}
	g.Expect(byName).To(HaveLen(18))
	g.Expect(byName["concurrency"]).To(Equal(managerFlag{name: "concurrency", typ: "int", usage: "How many policies are reconciled at once.", def: "2"}))
	g.Expect(byName["health-probe-bind-address"].def).To(Equal(":8081"), "quoted defaults are unquoted")
	g.Expect(byName["leader-elect"]).To(Equal(managerFlag{name: "leader-elect", usage: "Elect a leader."}))
	g.Expect(byName["zap-devel"].def).To(BeEmpty(), "a parenthesis that is not a default stays in the usage")
	g.Expect(byName["zap-devel"].usage).To(HaveSuffix("stackTraceLevel=Error)"))

	_, err = parseFlagHelp([]byte("no flags here\n"))
	g.Expect(err).To(HaveOccurred())
}

func TestCheckFlagsWantsEveryFlagExposed(t *testing.T) {
	g := NewWithT(t)
	flags, err := parseFlagHelp([]byte(testHelp))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = checkFlags(flags)
	g.Expect(err).NotTo(HaveOccurred())

	_, err = checkFlags(append(flags, managerFlag{name: "new-flag"}))
	g.Expect(err).To(MatchError(ContainSubstring("--new-flag that the chart does not expose")))

	_, err = checkFlags(flags[1:])
	g.Expect(err).To(MatchError(ContainSubstring("exposes --concurrency, which the manager no longer has")))
}

func TestRenderTemplatesConfig(t *testing.T) {
	g := NewWithT(t)
	files, err := render(testInputs(t, testInstall), testOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(slices.Sorted(maps.Keys(files))).To(Equal([]string{
		".helmignore",
		"Chart.yaml",
		"README.md",
		"crds/example.com_things.yaml",
		"templates/NOTES.txt",
		"templates/_helpers.tpl",
		"templates/manager/controller-manager.yaml",
		"templates/metrics/metrics-service.yaml",
		"templates/network-policy/allow-metrics-traffic.yaml",
		"templates/prometheus/alerts.yaml",
		"templates/prometheus/metrics-monitor.yaml",
		"templates/rbac/controller-manager.yaml",
		"templates/rbac/leader-election-role.yaml",
		"templates/rbac/leader-election-rolebinding.yaml",
		"templates/rbac/metrics-auth-role.yaml",
		"templates/rbac/metrics-auth-rolebinding.yaml",
		"templates/rbac/viewer-role.yaml",
		"values.schema.json",
		"values.yaml",
	}))

	manager := string(files["templates/manager/controller-manager.yaml"])
	for _, spec := range exposedFlags {
		g.Expect(manager).To(ContainSubstring(`"--`+spec.name), "every exposed flag is passed")
		g.Expect(manager).To(ContainSubstring(".Values."+spec.path), "from its value")
	}
	g.Expect(manager).To(ContainSubstring(`image: {{ include "op.image" $ | quote }}`))
	g.Expect(manager).To(ContainSubstring("port: {{ .Values.manager.healthProbe.port }}"))
	g.Expect(manager).NotTo(ContainSubstring("controller:latest"))

	values := string(files["values.yaml"])
	g.Expect(values).To(ContainSubstring("    repository: example.com/op\n    # Image tag.\n    tag: v1.2.3\n"))
	g.Expect(values).To(ContainSubstring("  concurrency: 2\n"), "the manager's default")
	g.Expect(values).To(ContainSubstring("    enabled: true\n"), "config/default's --leader-elect")
	g.Expect(values).To(ContainSubstring("  resources:\n    limits:\n      memory: 64Mi\n"), "config/default's resources")

	g.Expect(string(files["templates/rbac/viewer-role.yaml"])).To(HavePrefix(generatedHeader + "{{- if .Values.rbac.aggregatedRoles }}\n"))
	g.Expect(string(files["templates/rbac/metrics-auth-rolebinding.yaml"])).To(ContainSubstring("{{- if and .Values.metrics.enabled .Values.metrics.secure }}\n"))
	g.Expect(string(files["templates/rbac/leader-election-role.yaml"])).To(ContainSubstring("namespace: {{ .Values.manager.leaderElection.namespace | default .Release.Namespace }}\n"))
	g.Expect(string(files["templates/prometheus/metrics-monitor.yaml"])).To(ContainSubstring("  - path: /metrics\n"), "a list item cannot start with a template action")
	g.Expect(string(files["Chart.yaml"])).To(ContainSubstring("\nversion: 1.2.3\n"))
	g.Expect(string(files["Chart.yaml"])).To(ContainSubstring("\nkubeVersion: '>= 1.30.0-0'\n"))
	g.Expect(string(files["README.md"])).To(ContainSubstring("kubectl label namespace op-system pod-security.kubernetes.io/enforce=restricted"))

	again, err := render(testInputs(t, testInstall), testOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(files), "rendering is deterministic")
}

func TestRenderRejectsWhatItCannotTemplate(t *testing.T) {
	for name, tc := range map[string]struct {
		from, to, want string
	}{
		"a flag the chart does not expose": {
			from: "--leader-elect,", to: "--leader-elect, --kubeconfig=/k,",
			want: "passes --kubeconfig, which the chart does not expose",
		},
		"a metrics address on one interface": {
			from: "--metrics-bind-address=:8443", to: "--metrics-bind-address=127.0.0.1:8443",
			want: "the chart knows 0 and :<port>",
		},
		"a probe on another port": {
			from: "readinessProbe: {httpGet: {path: /readyz, port: 8081}}", to: "readinessProbe: {httpGet: {path: /readyz, port: 9090}}",
			want: "readinessProbe's port 9090",
		},
		"a second container": {
			from: "      - name: manager\n", to: "      - name: sidecar\n        image: s\n      - name: manager\n",
			want: "the chart knows one container",
		},
		"a kind the chart does not place": {
			from: "apiVersion: apps/v1\nkind: Deployment", to: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: op-job}\n---\napiVersion: apps/v1\nkind: Deployment",
			want: "renders a Job",
		},
		"an object outside the prefix": {
			from: "metadata: {name: op-viewer-role,", to: "metadata: {name: viewer-role,",
			want: "must be named op-<name>",
		},
		"a binding to someone else": {
			from: "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-metrics-auth-role}\nsubjects: [{kind: ServiceAccount, name: op-controller-manager, namespace: op-system}]",
			to:   "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-metrics-auth-role}\nsubjects: [{kind: Group, name: devs}]",
			want: "binds Group devs",
		},
		"a template action in config": {
			from: "path: /readyz", to: "path: '/{{readyz}}'",
			want: "contains {{",
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(testInstall).To(ContainSubstring(tc.from))
			_, err := render(testInputs(t, strings.Replace(testInstall, tc.from, tc.to, 1)), testOptions)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestSplitImage(t *testing.T) {
	g := NewWithT(t)
	for image, want := range map[string][3]string{
		"example.com:5000/op:v1":   {"example.com:5000/op", "v1", ""},
		"example.com/op@sha256:ab": {"example.com/op", "", "sha256:ab"},
	} {
		repository, tag, digest, err := splitImage(image)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect([3]string{repository, tag, digest}).To(Equal(want), image)
	}
	_, _, _, err := splitImage("example.com:5000/op")
	g.Expect(err).To(MatchError(ContainSubstring("no tag or digest")))
}
