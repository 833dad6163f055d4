// Command helmchart renders the operator's Helm chart from config/, in the layout of kubebuilder's
// helm plugin:
//
//	go run ./hack/helmchart --kustomize bin/kustomize --version 0.1.0 \
//	    --image ghcr.io/proberedirect/probe-redirect-operator:v0.1.0 --out dist/chart
//
// It builds config/default, config/prometheus and config/network-policy with kustomize and turns
// each object into a template under templates/: names follow the release, namespaces are the
// release's, the ServiceMonitor and the NetworkPolicy are optional, and the manager's image,
// replicas, resources, security contexts, scheduling and every command-line flag come from
// values. The CRD goes to crds/ as it is. The flags, their defaults and their help text are read
// from the manager itself (`go run . -h`), so a new flag fails this generator until the chart
// exposes it, and a change to config/ that the templating does not expect fails it too.
//
// It writes Chart.yaml, values.yaml, values.schema.json, README.md, .helmignore, templates/ and
// crds/ into --out, replacing what was there. The output depends only on its inputs (no
// timestamps), so test/helm can check that the committed chart is up to date.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/proberedirect/probe-redirect-operator/hack/internal/manifests"
)

type options struct {
	kustomize string
	version   string
	image     string
	out       string
	manager   string
	chartName string
}

func main() {
	var o options
	flag.StringVar(&o.kustomize, "kustomize", "bin/kustomize", "kustomize binary")
	flag.StringVar(&o.version, "version", "", "operator version, semver without a leading v (required): the chart's version and appVersion")
	flag.StringVar(&o.image, "image", "", "manager image reference, repository:tag or repository@digest (required)")
	flag.StringVar(&o.out, "out", "dist/chart", "chart directory; replaced")
	flag.StringVar(&o.manager, "manager", "", "manager binary to read the flags from (default: `go run .`)")
	flag.StringVar(&o.chartName, "name", "probe-redirect-operator", "chart name")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "helmchart:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if _, err := version.ParseSemantic(o.version); err != nil || strings.HasPrefix(o.version, "v") {
		return fmt.Errorf("--version %q must be a semantic version such as 0.1.0", o.version)
	}
	if o.image == "" {
		return errors.New("--image is required")
	}
	help, err := managerHelp(o.manager)
	if err != nil {
		return err
	}
	flags, err := parseFlagHelp(help)
	if err != nil {
		return err
	}
	in := inputs{flags: flags}
	for _, k := range []struct {
		dir  string
		objs *[]*unstructured.Unstructured
	}{
		{"config/default", &in.install},
		{"config/prometheus", &in.prometheus},
		{"config/network-policy", &in.networkPolicy},
	} {
		if *k.objs, err = manifests.KustomizeBuild(o.kustomize, k.dir); err != nil {
			return err
		}
	}
	if in.csvBase, err = manifests.ReadObject(filepath.Join("config", "manifests", "bases", o.chartName+".clusterserviceversion.yaml")); err != nil {
		return fmt.Errorf("CSV base: %w", err)
	}
	if in.argocdHealth, err = os.ReadFile(filepath.Join("config", "argocd", "argocd-cm-health-patch.yaml")); err != nil {
		return err
	}
	files, err := render(in, o)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	return manifests.WriteFiles(o.out, files)
}

// inputs are everything the chart is made from.
type inputs struct {
	// install, prometheus and networkPolicy are config/default, config/prometheus and
	// config/network-policy, rendered.
	install, prometheus, networkPolicy []*unstructured.Unstructured
	// flags are the manager's command-line flags, from its -h output.
	flags []managerFlag
	// csvBase is the hand-written CSV base (config/manifests/bases): the chart's metadata.
	csvBase *unstructured.Unstructured
	// argocdHealth is config/argocd/argocd-cm-health-patch.yaml, quoted in the chart's README.
	argocdHealth []byte
}

// managerHelp returns what the manager prints for -h: its flags with defaults and help.
func managerHelp(manager string) ([]byte, error) {
	cmd := exec.Command("go", "run", ".", "-h")
	if manager != "" {
		cmd = exec.Command(manager, "-h")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return out.Bytes(), nil
}

// render returns the chart's files by path relative to the chart directory.
func render(in inputs, o options) (map[string][]byte, error) {
	c, err := newChart(in, o)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, obj := range in.install {
		if err := c.addObject(files, obj, ""); err != nil {
			return nil, err
		}
	}
	for _, extra := range []struct {
		objs      []*unstructured.Unstructured
		kind, dir string
		condition string
	}{
		{in.prometheus, "ServiceMonitor", "config/prometheus", ".Values.serviceMonitor.enabled"},
		{in.prometheus, "PrometheusRule", "config/prometheus", ".Values.prometheusRule.enabled"},
		{in.networkPolicy, "NetworkPolicy", "config/network-policy", ".Values.networkPolicy.enabled"},
	} {
		var found []*unstructured.Unstructured
		for _, obj := range extra.objs {
			if obj.GetKind() == extra.kind {
				found = append(found, obj)
			}
		}
		if len(found) != 1 {
			return nil, fmt.Errorf("%s must render exactly one %s", extra.dir, extra.kind)
		}
		if err := c.addObject(files, withPrefix(found[0], c.prefix), extra.condition); err != nil {
			return nil, err
		}
	}
	for _, obj := range slices.Concat(in.prometheus, in.networkPolicy) {
		if !slices.Contains([]string{"ServiceMonitor", "PrometheusRule", "NetworkPolicy"}, obj.GetKind()) {
			return nil, fmt.Errorf("an overlay renders a %s (%s), which the chart generator does not place", obj.GetKind(), obj.GetName())
		}
	}
	if !c.sawDeployment {
		return nil, errors.New("config/default renders no manager Deployment")
	}
	for _, f := range []struct {
		name string
		data func() ([]byte, error)
	}{
		{"Chart.yaml", c.chartYAML},
		{"values.yaml", func() ([]byte, error) { return c.values.yaml(), nil }},
		{"values.schema.json", c.values.schemaJSON},
		{"README.md", func() ([]byte, error) { return c.readme(in.argocdHealth), nil }},
		{".helmignore", func() ([]byte, error) { return []byte(helmignore), nil }},
		{"templates/_helpers.tpl", func() ([]byte, error) { return []byte(c.helpers()), nil }},
		{"templates/NOTES.txt", func() ([]byte, error) { return []byte(c.notes()), nil }},
	} {
		data, err := f.data()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		files[f.name] = data
	}
	for name, data := range files {
		if strings.HasPrefix(name, "templates/") && bytes.Contains(data, []byte(c.namespace)) {
			return nil, fmt.Errorf("%s still names the namespace %s of config/default; the templating missed a field", name, c.namespace)
		}
	}
	return files, nil
}

// withPrefix gives an object of a standalone overlay (config/prometheus, config/network-policy)
// the name prefix config/default gives its objects, as it would get if config/default listed it.
func withPrefix(obj *unstructured.Unstructured, prefix string) *unstructured.Unstructured {
	obj = obj.DeepCopy()
	obj.SetName(prefix + obj.GetName())
	return obj
}

const helmignore = `# Code generated by ` + "`make helm-chart`" + ` (go run ./hack/helmchart). DO NOT EDIT.
# Patterns to ignore when packaging the chart.
.DS_Store
.git/
.gitignore
*.swp
*.tmp
*.bak
*.orig
*~
.idea/
.vscode/
*.tgz
`
