package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/proberedirect/probe-redirect-operator/internal/analyze"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	kumamesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/kuma"
)

// errFindings is returned when the analysis succeeded and --fail-on matched.
type errFindings struct{ failOn analyze.FailOn }

func (e errFindings) Error() string { return fmt.Sprintf("findings matched --fail-on=%s", e.failOn) }

type analyzeOptions struct {
	filenames, contextFiles []string
	recursive, cluster      bool
	namespace, output       string
	failOn                  string
	rootNamespace           string
	kumaSystemNamespace     string
	istioVersion            string
	statusPort              int32
	kubeconfig, kubeContext string
}

func newRootCommand(name string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	use := name
	if strings.HasPrefix(name, "kubectl-") {
		use = "kubectl " + strings.TrimPrefix(name, "kubectl-")
	}
	root := &cobra.Command{
		Use:           use,
		Short:         "Tell which kubelet probes a service mesh breaks, and whether a ProbeRedirectPolicy fixes them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newAnalyzeCommand(use))
	return root
}

func newAnalyzeCommand(root string) *cobra.Command {
	o := analyzeOptions{}
	cmd := &cobra.Command{
		Use:   "analyze -f FILE|DIR|- [-f ...]",
		Short: "Judge workload manifests the way the operator would, before they are applied",
		Long: `analyze reads Kubernetes manifests (files, directories, or - for standard input: the output of
helm template or kustomize build) and prints, for every Deployment, StatefulSet and DaemonSet and
each of its probes, the verdict the probe-redirect-operator would reach in the mesh: whether the
probe needs redirecting and why (the effective mTLS mode per port: Istio's PeerAuthentications,
Kuma's Meshes and MeshTLS policies), whether a
ProbeRedirectPolicy in the input will redirect it, whether the template already enables the
rewrite, and which probes will break.

The Namespaces, PeerAuthentications, Kuma Meshes and MeshTLS policies, and ProbeRedirectPolicies
it judges by come from the manifests, from --context-file, and with --cluster from the current kubeconfig's cluster (read
only). Objects in the files win over the cluster's.

Exit status: 0 when nothing matches --fail-on, 1 when something does, 2 on an error.`,
		Example: fmt.Sprintf(`  # What breaks if this chart is installed into namespace shop?
  helm template shop ./chart -n shop | %[1]s analyze -f - --context-file mesh/
  # In CI, with annotations for the pull request
  %[1]s analyze -f deploy/ -R -o sarif > probes.sarif`, root),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAnalyze(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.filenames, "filename", "f", nil, "Manifests to judge: a file, a directory (its .yaml, .yml and .json files), or - for standard input. Repeatable.")
	f.BoolVarP(&o.recursive, "recursive", "R", false, "Read directories recursively.")
	f.StringSliceVar(&o.contextFiles, "context-file", nil, "Manifests that give context only (Namespaces, PeerAuthentications, Kuma Meshes and MeshTLS policies, ProbeRedirectPolicies); their workloads are not judged. Repeatable.")
	f.BoolVar(&o.cluster, "cluster", false, "Also read Namespaces, PeerAuthentications, Kuma Meshes and MeshTLS policies, and ProbeRedirectPolicies from the cluster of the current kubeconfig (read only).")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig for --cluster.")
	f.StringVar(&o.kubeContext, "context", "", "The kubeconfig context for --cluster.")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "Namespace of objects that name none.")
	f.StringVarP(&o.output, "output", "o", "table", "Output format: "+strings.Join(analyze.Formats, ", ")+".")
	f.StringVar(&o.failOn, "fail-on", string(analyze.FailOnBreak), "Exit 1 when: break (a probe will break and nothing in the input fixes it), needs-redirect (also when a policy in the input will fix it), never.")
	f.StringVar(&o.rootNamespace, "root-namespace", "istio-system", "Istio's root namespace, home of the mesh-wide PeerAuthentication (as the operator's flag).")
	f.StringVar(&o.kumaSystemNamespace, "kuma-system-namespace", kumamesh.DefaultSystemNamespace, "Kuma's system namespace, home of the mesh-wide MeshTLS policies (as the operator's flag).")
	f.Int32Var(&o.statusPort, "status-port", istiomesh.DefaultStatusPort, "The mesh agent's default status port (as the operator's flag).")
	f.StringVar(&o.istioVersion, "istio-version", "", "The Istio version to judge by, for example 1.26.4 (some injection rules changed in 1.27); empty follows the newest Istio.")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func runAnalyze(ctx context.Context, o analyzeOptions, stdin io.Reader, stdout io.Writer) error {
	failOn := analyze.FailOn(o.failOn)
	if !slices.Contains(analyze.FailOnValues, failOn) {
		return fmt.Errorf("--fail-on=%s: use one of break, needs-redirect, never", o.failOn)
	}
	if !slices.Contains(analyze.Formats, o.output) {
		return fmt.Errorf("--output=%s: use one of %s", o.output, strings.Join(analyze.Formats, ", "))
	}
	var objs analyze.Objects
	for _, name := range o.filenames {
		if err := readPath(name, o.recursive, o.namespace, stdin, &objs); err != nil {
			return err
		}
	}
	var context analyze.Objects
	for _, name := range o.contextFiles {
		if err := readPath(name, true, o.namespace, stdin, &context); err != nil {
			return err
		}
	}
	if o.cluster {
		live, err := readCluster(ctx, o.kubeconfig, o.kubeContext)
		if err != nil {
			return err
		}
		context = merge(context, live)
	}
	objs = merge(objs, context)
	opts := analyze.Options{RootNamespace: o.rootNamespace, KumaSystemNamespace: o.kumaSystemNamespace, StatusPort: o.statusPort, Now: time.Now()}
	if o.istioVersion != "" {
		v, err := version.ParseGeneric(o.istioVersion)
		if err != nil {
			return fmt.Errorf("--istio-version=%s: %w", o.istioVersion, err)
		}
		opts.Istio = istiomesh.IstioVersion{Version: v, Source: "--istio-version"}
	}
	report := analyze.Analyze(objs, opts)
	if err := report.Write(stdout, o.output); err != nil {
		return err
	}
	if report.Fails(failOn) {
		return errFindings{failOn: failOn}
	}
	return nil
}

// readPath decodes a file, the manifest files of a directory, or standard input ("-").
func readPath(name string, recursive bool, namespace string, stdin io.Reader, objs *analyze.Objects) error {
	if name == "-" {
		return analyze.DecodeManifests(stdin, "-", namespace, objs)
	}
	info, err := os.Stat(name)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return readFile(name, namespace, objs)
	}
	return filepath.WalkDir(name, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != name && !recursive:
			return filepath.SkipDir
		case d.IsDir():
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			return readFile(path, namespace, objs)
		}
		return nil
	})
}

func readFile(path, namespace string, objs *analyze.Objects) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	return analyze.DecodeManifests(f, filepath.ToSlash(path), namespace, objs)
}

// merge adds context's Namespaces, PeerAuthentications, Kuma Meshes and MeshTLS policies and
// ProbeRedirectPolicies to objs where objs has no object of the same kind, namespace and name;
// context's workloads are not judged. Of what context ignored, only its Kuma Meshes and MeshTLS
// policies that cannot be read are kept, since they change the judgement.
func merge(objs, context analyze.Objects) analyze.Objects {
	key := func(ns, name string) string { return ns + "/" + name }
	have := map[string]bool{}
	for _, n := range objs.Namespaces {
		have["Namespace:"+n.Name] = true
	}
	for _, p := range objs.PeerAuthentications {
		have["PeerAuthentication:"+key(p.Namespace, p.Name)] = true
	}
	for _, p := range objs.Policies {
		have["ProbeRedirectPolicy:"+key(p.Namespace, p.Name)] = true
	}
	for _, m := range objs.KumaMeshes {
		have["Mesh:"+m.Name] = true
	}
	for _, p := range objs.KumaMeshTLSes {
		have["MeshTLS:"+key(p.Namespace, p.Name)] = true
	}
	for _, n := range context.Namespaces {
		if !have["Namespace:"+n.Name] {
			objs.Namespaces = append(objs.Namespaces, n)
		}
	}
	for _, p := range context.PeerAuthentications {
		if !have["PeerAuthentication:"+key(p.Namespace, p.Name)] {
			objs.PeerAuthentications = append(objs.PeerAuthentications, p)
		}
	}
	for _, p := range context.Policies {
		if !have["ProbeRedirectPolicy:"+key(p.Namespace, p.Name)] {
			objs.Policies = append(objs.Policies, p)
		}
	}
	for _, m := range context.KumaMeshes {
		if !have["Mesh:"+m.Name] {
			objs.KumaMeshes = append(objs.KumaMeshes, m)
		}
	}
	for _, p := range context.KumaMeshTLSes {
		if !have["MeshTLS:"+key(p.Namespace, p.Name)] {
			objs.KumaMeshTLSes = append(objs.KumaMeshTLSes, p)
		}
	}
	for _, i := range context.Ignored {
		if i.APIVersion == analyze.KumaGroupVersion.String() && i.Why != "" {
			objs.Ignored = append(objs.Ignored, i)
		}
	}
	return objs
}
