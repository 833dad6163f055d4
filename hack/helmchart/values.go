package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// node is a key of values.yaml: a group of keys, or a value with its default.
type node struct {
	key string
	// doc is the comment above the key (and its description in the README).
	doc      string
	children []*node
	leaf     bool
	def      any
	// schema is the leaf's JSON schema; by default, the type of def.
	schema map[string]any
}

func group(key, doc string, children ...*node) *node {
	return &node{key: key, doc: doc, children: children}
}

func leaf(key string, def any, doc string) *node {
	return &node{key: key, doc: doc, leaf: true, def: def}
}

func (n *node) withSchema(schema map[string]any) *node {
	n.schema = schema
	return n
}

// buildValues lays out values.yaml. Defaults come from config/default (image, replicas,
// resources, security contexts, the flags it passes) and from the manager (every other flag's
// default, and the flags' help).
func (c *chart) buildValues() (*node, error) {
	repository, tag, digest, err := splitImage(c.o.image)
	if err != nil {
		return nil, err
	}
	flagLeaf := func(path string) *node {
		for _, spec := range exposedFlags {
			if spec.path == path {
				key := path[strings.LastIndex(path, ".")+1:]
				flag := "--" + spec.name
				switch spec.kind {
				case listenPortFlag:
					flag += "=:<port>"
				case metricsAddressFlag:
					flag += "=:<port>` (`0` when enabled is false"
				}
				doc := fmt.Sprintf("`%s`: %s", flag, c.flags[spec.name].usage)
				if spec.kind == metricsAddressFlag {
					doc = fmt.Sprintf("`%s): %s", flag, c.flags[spec.name].usage)
				}
				return leaf(key, c.defaults[path], doc)
			}
		}
		panic("no flag has the value " + path)
	}
	stringOrInt := map[string]any{"type": []any{"string", "integer"}}
	// The formats the manager's flags accept, so that a bad value fails at helm install rather
	// than in a crash-looping pod: a TCP port, a positive count, a Go duration (time.ParseDuration,
	// not negative).
	port := map[string]any{"type": "integer", "minimum": 1, "maximum": 65535}
	positive := map[string]any{"type": "integer", "minimum": 1}
	duration := map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
	root := group("", "",
		leaf("nameOverride", "", "Replaces the chart's name in object names and in the app.kubernetes.io/name label."),
		leaf("fullnameOverride", "", "Replaces the prefix of every object name (by default the release name, followed by the chart's name unless the release name contains it)."),
		group("manager", "The manager Deployment.",
			leaf("replicas", c.defaults["manager.replicas"], "Replicas of the manager. With leader election only one of them acts at a time.").
				withSchema(map[string]any{"type": "integer", "minimum": 0}),
			group("image", "The manager's image.",
				leaf("repository", repository, "Image repository."),
				leaf("tag", tag, "Image tag."),
				leaf("digest", digest, "Image digest (sha256:...); when set, it is used instead of the tag."),
				leaf("pullPolicy", "IfNotPresent", "Image pull policy.").
					withSchema(map[string]any{"type": "string", "enum": []any{"Always", "IfNotPresent", "Never"}}),
			),
			leaf("imagePullSecrets", []any{}, "Secrets to pull the image with, as in the pod spec: [{name: ...}]."),
			group("healthProbe", "The liveness (/healthz) and readiness (/readyz) endpoints.",
				flagLeaf("manager.healthProbe.port").withSchema(port),
			),
			group("leaderElection", "Leader election, with a Lease.",
				flagLeaf("manager.leaderElection.enabled"),
				flagLeaf("manager.leaderElection.namespace"),
			),
			flagLeaf("manager.rootNamespace"),
			flagLeaf("manager.kumaSystemNamespace"),
			flagLeaf("manager.statusPort").withSchema(port),
			flagLeaf("manager.concurrency").withSchema(positive),
			flagLeaf("manager.unhealthyWindow").withSchema(duration),
			flagLeaf("manager.eventCoalesce").withSchema(duration),
			group("logging", "Logging (controller-runtime's zap flags); empty means the manager's default.",
				flagLeaf("manager.logging.development"),
				flagLeaf("manager.logging.encoder"),
				flagLeaf("manager.logging.level").withSchema(stringOrInt),
				flagLeaf("manager.logging.stacktraceLevel"),
				flagLeaf("manager.logging.timeEncoding"),
			),
			leaf("extraArgs", []any{}, "More command-line arguments for the manager, after the ones above."),
			leaf("resources", c.defaults["manager.resources"], "The manager container's resources."),
			leaf("podSecurityContext", c.defaults["manager.podSecurityContext"], "The pod's security context (the restricted Pod Security Standard by default)."),
			leaf("securityContext", c.defaults["manager.securityContext"], "The manager container's security context."),
			leaf("podLabels", map[string]any{}, "More labels for the pod."),
			leaf("podAnnotations", map[string]any{}, "More annotations for the pod."),
			leaf("nodeSelector", map[string]any{}, "The pod's node selector."),
			leaf("tolerations", []any{}, "The pod's tolerations."),
			leaf("affinity", map[string]any{}, "The pod's affinity."),
			leaf("topologySpreadConstraints", []any{}, "The pod's topology spread constraints."),
			leaf("priorityClassName", "", "The pod's priority class."),
			leaf("terminationGracePeriodSeconds", c.defaults["manager.terminationGracePeriodSeconds"], "How long the manager may take to stop.").
				withSchema(map[string]any{"type": "integer", "minimum": 0}),
		),
		group("serviceAccount", "The manager's ServiceAccount.",
			leaf("create", true, "Create it. When false, name must be an existing ServiceAccount; the chart's RBAC binds it."),
			leaf("name", "", "Its name; by default <fullname>-"+c.serviceAccount+"."),
			leaf("annotations", map[string]any{}, "Its annotations."),
		),
		group("rbac", "RBAC besides the manager's own (which is always installed).",
			leaf("aggregatedRoles", true, "Install the ClusterRoles that add ProbeRedirectPolicy permissions to the built-in admin, edit and view roles."),
		),
		group("metrics", "The metrics endpoint and its Service.",
			leaf("enabled", c.defaults[metricsEnabledPath], "Serve metrics on `port`, and install the metrics Service."),
			flagLeaf("metrics.port").withSchema(port),
			flagLeaf("metrics.secure"),
			flagLeaf("metrics.enableHTTP2"),
		),
		group("serviceMonitor", "A Prometheus Operator ServiceMonitor for the metrics Service (config/prometheus); needs the Prometheus Operator's CRDs.",
			leaf("enabled", false, "Install it."),
			leaf("labels", map[string]any{}, "More labels, for the Prometheus that selects monitors by label."),
		),
		group("prometheusRule", "The operator's alerts, a Prometheus Operator PrometheusRule (config/prometheus/rules.yaml); needs the Prometheus Operator's CRDs.",
			leaf("enabled", false, "Install it."),
			leaf("labels", map[string]any{}, "More labels, for the Prometheus that selects rules by label."),
		),
		group("networkPolicy", "A NetworkPolicy that admits metrics traffic only from namespaces labelled metrics: enabled (config/network-policy).",
			leaf("enabled", false, "Install it."),
		),
	)
	// Every flag's value is in the tree exactly once.
	seen := map[string]int{}
	root.walk("", func(path string, n *node) {
		if n.leaf {
			seen[path]++
		}
	})
	for _, spec := range exposedFlags {
		if seen[spec.path] != 1 {
			return nil, fmt.Errorf("values.yaml has %s %d times", spec.path, seen[spec.path])
		}
	}
	return root, nil
}

// splitImage reads repository:tag or repository@digest.
func splitImage(image string) (repository, tag, digest string, err error) {
	if repo, d, ok := strings.Cut(image, "@"); ok {
		return repo, "", d, nil
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return "", "", "", fmt.Errorf("--image %q has no tag or digest", image)
	}
	return image[:colon], image[colon+1:], "", nil
}

func (n *node) walk(prefix string, f func(path string, n *node)) {
	path := n.key
	if prefix != "" {
		path = prefix + "." + n.key
	}
	f(path, n)
	for _, child := range n.children {
		child.walk(path, f)
	}
}

// yaml writes values.yaml, with each key's doc as a comment.
func (n *node) yaml() []byte {
	var b strings.Builder
	b.WriteString("# Code generated by `make helm-chart` (go run ./hack/helmchart) from config/ and the manager's flags. DO NOT EDIT.\n")
	b.WriteString("# Default values of the probe-redirect-operator chart. The chart's README lists them in a table.\n")
	for _, child := range n.children {
		b.WriteString("\n")
		child.writeYAML(&b, "")
	}
	return []byte(b.String())
}

func (n *node) writeYAML(b *strings.Builder, indent string) {
	comment := "# "
	if !n.leaf {
		comment = "## "
	}
	for line := range strings.SplitSeq(n.doc, "\n") {
		if line != "" {
			b.WriteString(indent + comment + line + "\n")
		}
	}
	if !n.leaf {
		b.WriteString(indent + n.key + ":\n")
		for _, child := range n.children {
			child.writeYAML(b, indent+"  ")
		}
		return
	}
	data, err := yaml.Marshal(n.def)
	if err != nil {
		panic(err) // defaults are plain YAML values
	}
	text := strings.TrimSuffix(string(data), "\n")
	if !strings.Contains(text, "\n") {
		b.WriteString(indent + n.key + ": " + text + "\n")
		return
	}
	b.WriteString(indent + n.key + ":\n")
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString(indent + "  " + line + "\n")
	}
}

// schemaJSON is values.schema.json: Helm checks the values against it on install, upgrade, lint
// and template. Groups accept only their own keys, so a misspelt value fails instead of being
// ignored.
func (n *node) schemaJSON() ([]byte, error) {
	schema := n.schemaOf()
	schema["$schema"] = "https://json-schema.org/draft-07/schema#"
	schema["title"] = "Values of the probe-redirect-operator chart (generated by make helm-chart)"
	// Umbrella charts pass global values to every subchart.
	schema["properties"].(map[string]any)["global"] = map[string]any{"type": "object"}
	data, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func (n *node) schemaOf() map[string]any {
	if n.leaf {
		s := map[string]any{}
		for k, v := range n.schema {
			s[k] = v
		}
		if s["type"] == nil {
			s["type"] = jsonType(n.def)
		}
		if n.doc != "" {
			s["description"] = n.doc
		}
		return s
	}
	properties := map[string]any{}
	for _, child := range n.children {
		properties[child.key] = child.schemaOf()
	}
	s := map[string]any{"type": "object", "properties": properties, "additionalProperties": false}
	if n.doc != "" {
		s["description"] = n.doc
	}
	return s
}

func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case int, int32, int64:
		return "integer"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	panic(fmt.Sprintf("no JSON type for %T", v))
}

// table is the README's table of values: key, default, description.
func (n *node) table() string {
	var b strings.Builder
	b.WriteString("| key | default | description |\n|---|---|---|\n")
	n.walk("", func(path string, n *node) {
		if !n.leaf {
			return
		}
		def, err := json.Marshal(n.def)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", path, def, strings.ReplaceAll(n.doc, "|", `\|`))
	})
	return b.String()
}
