package main

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// managerFlag is one flag of the manager, as its -h output describes it.
type managerFlag struct {
	name, typ, usage string
	// def is the default as -h prints it ("" when it prints none).
	def string
}

var defaultSuffix = regexp.MustCompile(`\s*\(default (.*)\)$`)

// parseFlagHelp reads the flags from the output of Go's flag.PrintDefaults:
//
//	-name type
//	    	usage (default value)
func parseFlagHelp(help []byte) ([]managerFlag, error) {
	var flags []managerFlag
	scanner := bufio.NewScanner(bytes.NewReader(help))
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "  -"):
			fields := strings.Fields(line)
			f := managerFlag{name: strings.TrimPrefix(fields[0], "-")}
			if len(fields) > 1 {
				f.typ = fields[1]
			}
			flags = append(flags, f)
		case strings.HasPrefix(line, "    \t") && len(flags) > 0:
			f := &flags[len(flags)-1]
			f.usage = strings.TrimSpace(f.usage + " " + strings.TrimSpace(line))
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no flags in the manager's -h output:\n%s", help)
	}
	for i := range flags {
		f := &flags[i]
		if m := defaultSuffix.FindStringSubmatch(f.usage); m != nil {
			f.usage = strings.TrimSpace(strings.TrimSuffix(f.usage, m[0]))
			f.def = m[1]
			if unquoted, err := strconv.Unquote(m[1]); err == nil {
				f.def = unquoted
			}
		}
	}
	return flags, nil
}

// flagKind says how a flag's value is kept in values.yaml and passed on the command line.
type flagKind int

const (
	// stringFlag is always passed: --name=<string>.
	stringFlag flagKind = iota
	// optionalStringFlag is passed when the value is not empty.
	optionalStringFlag
	// intFlag is always passed: --name=<int>.
	intFlag
	// boolFlag is always passed: --name=<true|false>.
	boolFlag
	// optionalBoolFlag is passed, as --name, when the value is true.
	optionalBoolFlag
	// listenPortFlag is an address ":<port>" kept as the port: --name=:<port>.
	listenPortFlag
	// metricsAddressFlag is --metrics-bind-address, kept as metrics.enabled and metrics.port.
	metricsAddressFlag
)

// flagSpec is how the chart exposes one of the manager's flags.
type flagSpec struct {
	name string
	// path is the value's path in values.yaml.
	path string
	kind flagKind
}

// exposedFlags are the manager's flags with their values, in the order the Deployment passes
// them. Every flag of the manager is here or in notExposed; the generator fails otherwise.
var exposedFlags = []flagSpec{
	{"metrics-bind-address", "metrics.port", metricsAddressFlag},
	{"metrics-secure", "metrics.secure", boolFlag},
	{"enable-http2", "metrics.enableHTTP2", boolFlag},
	{"health-probe-bind-address", "manager.healthProbe.port", listenPortFlag},
	{"leader-elect", "manager.leaderElection.enabled", boolFlag},
	{"leader-election-namespace", "manager.leaderElection.namespace", optionalStringFlag},
	{"root-namespace", "manager.rootNamespace", stringFlag},
	{"kuma-system-namespace", "manager.kumaSystemNamespace", stringFlag},
	{"status-port", "manager.statusPort", intFlag},
	{"concurrency", "manager.concurrency", intFlag},
	{"unhealthy-window", "manager.unhealthyWindow", stringFlag},
	{"event-coalesce", "manager.eventCoalesce", stringFlag},
	{"zap-devel", "manager.logging.development", optionalBoolFlag},
	{"zap-encoder", "manager.logging.encoder", optionalStringFlag},
	{"zap-log-level", "manager.logging.level", optionalStringFlag},
	{"zap-stacktrace-level", "manager.logging.stacktraceLevel", optionalStringFlag},
	{"zap-time-encoding", "manager.logging.timeEncoding", optionalStringFlag},
}

// notExposed are flags the chart deliberately leaves out, with the reason.
var notExposed = map[string]string{
	"kubeconfig": "in a cluster the manager uses its service account",
	"pprof-bind-address": "Go's profiling endpoints are unauthenticated: they are for a manager run by hand on loopback " +
		"(make bench saves heap profiles through them), not for an installed Deployment",
	"watch-namespaces": "the chart installs cluster-wide with ClusterRoles; namespace-scoped installs go through OLM " +
		"(olm.targetNamespaces, projected into WATCH_NAMESPACES), which grants Roles per target namespace",
}

const metricsEnabledPath = "metrics.enabled"

// defaultMetricsPort is metrics.port when config/default turns metrics off (the manager's
// default), so that turning them on needs one value.
const defaultMetricsPort = 8443

// checkFlags makes sure every flag of the manager is exposed or deliberately left out, and that
// every exposed flag exists.
func checkFlags(flags []managerFlag) (map[string]managerFlag, error) {
	byName := map[string]managerFlag{}
	for _, f := range flags {
		byName[f.name] = f
	}
	exposed := map[string]bool{}
	for _, spec := range exposedFlags {
		exposed[spec.name] = true
		if _, ok := byName[spec.name]; !ok {
			return nil, fmt.Errorf("the chart exposes --%s, which the manager no longer has; remove it from exposedFlags in hack/helmchart", spec.name)
		}
	}
	for _, f := range flags {
		if !exposed[f.name] && notExposed[f.name] == "" {
			return nil, fmt.Errorf("the manager has a flag --%s that the chart does not expose; add it to exposedFlags in hack/helmchart", f.name)
		}
	}
	return byName, nil
}

// setFlagValue records a flag's value (its default, or an argument in config/default) in the
// chart's default values.
func setFlagValue(defaults map[string]any, spec flagSpec, value string) error {
	switch spec.kind {
	case stringFlag, optionalStringFlag:
		defaults[spec.path] = value
	case intFlag:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("--%s=%s: not an integer", spec.name, value)
		}
		defaults[spec.path] = n
	case boolFlag, optionalBoolFlag:
		if value == "" {
			value = "false"
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("--%s=%s: not a boolean", spec.name, value)
		}
		defaults[spec.path] = b
	case listenPortFlag:
		port, err := listenPort(value)
		if err != nil {
			return fmt.Errorf("--%s=%s: %w", spec.name, value, err)
		}
		defaults[spec.path] = port
	case metricsAddressFlag:
		if value == "0" {
			defaults[metricsEnabledPath] = false
			if _, ok := defaults[spec.path]; !ok {
				defaults[spec.path] = int64(defaultMetricsPort)
			}
			return nil
		}
		port, err := listenPort(value)
		if err != nil {
			return fmt.Errorf("--%s=%s: %w (the chart knows 0 and :<port>)", spec.name, value, err)
		}
		defaults[metricsEnabledPath] = true
		defaults[spec.path] = port
	}
	return nil
}

// listenPort reads ":<port>", the only address form the chart templates (the pod's IP is not
// known in advance).
func listenPort(address string) (int64, error) {
	rest, ok := strings.CutPrefix(address, ":")
	if !ok {
		return 0, fmt.Errorf("the chart knows only addresses of the form :<port>")
	}
	port, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("%q is not a port", rest)
	}
	return port, nil
}

// argLines are the template lines of the manager container's args: one or none per exposed flag,
// then manager.extraArgs.
func argLines() []string {
	lines := []string{"args:"}
	for _, spec := range exposedFlags {
		v := ".Values." + spec.path
		switch spec.kind {
		case stringFlag:
			lines = append(lines, fmt.Sprintf(`- {{ printf "--%s=%%s" %s | quote }}`, spec.name, v))
		case intFlag, boolFlag:
			lines = append(lines, fmt.Sprintf(`- {{ printf "--%s=%%v" %s | quote }}`, spec.name, v))
		case listenPortFlag:
			lines = append(lines, fmt.Sprintf(`- {{ printf "--%s=:%%v" %s | quote }}`, spec.name, v))
		case optionalStringFlag:
			lines = append(lines,
				fmt.Sprintf(`{{- with %s }}`, v),
				fmt.Sprintf(`- {{ printf "--%s=%%v" . | quote }}`, spec.name),
				`{{- end }}`)
		case optionalBoolFlag:
			lines = append(lines,
				fmt.Sprintf(`{{- if %s }}`, v),
				fmt.Sprintf(`- "--%s"`, spec.name),
				`{{- end }}`)
		case metricsAddressFlag:
			lines = append(lines, fmt.Sprintf(
				`- {{ printf "--%s=%%s" (ternary (printf ":%%v" %s) "0" .Values.%s) | quote }}`, spec.name, v, metricsEnabledPath))
		}
	}
	return append(lines,
		`{{- range .Values.manager.extraArgs }}`,
		`- {{ . | quote }}`,
		`{{- end }}`)
}

// parseArgs reads the manager's arguments in config/default: --name, --name=value.
func parseArgs(args []any) (map[string]string, error) {
	parsed := map[string]string{}
	for _, a := range args {
		s, ok := a.(string)
		if !ok || !strings.HasPrefix(s, "-") {
			return nil, fmt.Errorf("manager argument %v is not a flag", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(s, "-"), "=")
		if !hasValue {
			value = "true" // the only flags written without a value are boolean
		}
		parsed[name] = value
	}
	return parsed, nil
}
