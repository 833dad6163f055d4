package analyze

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/owenrumney/go-sarif/v3/pkg/report"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Formats are the values -o accepts.
var Formats = []string{"table", "json", "sarif"}

// Write prints the report in format (table, json or sarif) to w.
func (r Report) Write(w io.Writer, format string) error {
	switch format {
	case "table", "":
		return r.WriteTable(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "sarif":
		s, err := r.SARIF()
		if err != nil {
			return err
		}
		return s.PrettyWrite(w)
	}
	return fmt.Errorf("unknown output format %q: use one of %s", format, strings.Join(Formats, ", "))
}

// WriteTable prints one row per probe (one per workload without probes), then the notes and a
// one-line summary. A MESH column (before MTLS) is printed when a workload is in a mesh other than
// Istio, so a report on Istio workloads alone reads as it always has.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	withMesh := r.namesMeshes()
	meshCell := func(f WorkloadFinding) string {
		if !withMesh {
			return ""
		}
		return orDash(string(f.Mesh)) + "\t"
	}
	header := "NAMESPACE\tWORKLOAD\tCONTAINER\tPROBE\tTARGET\t"
	if withMesh {
		header += "MESH\t"
	}
	_, _ = fmt.Fprintln(tw, header+"MTLS\tVERDICT\tPOLICY\tWHY")
	for _, f := range r.Workloads {
		workload := fmt.Sprintf("%s/%s", f.Kind, f.Name)
		policy := orDash(f.Policy)
		if len(f.Probes) == 0 {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s%s\t%s\t%s\t%s\n", f.Namespace, workload, meshCell(f), orDash(string(f.MTLSMode)), f.Verdict, policy, f.Message)
			continue
		}
		for _, p := range f.Probes {
			verdict := string(p.Verdict)
			if p.Breaks && p.Verdict != WillBreak {
				verdict += " (breaks)"
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\t%s\t%s\t%s\n", f.Namespace, workload, p.Container, p.Kind,
				p.Original, meshCell(f), orDash(string(p.MTLSMode)), verdict, policy, why(f, p))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		_, _ = fmt.Fprintln(w, "Note: "+n)
	}
	if len(r.Ignored) > 0 {
		var names []string
		for _, i := range r.Ignored {
			name := i.Kind + "/" + i.Name
			if i.Why != "" {
				name = fmt.Sprintf("%s:%d (%s)", i.Source.File, i.Source.Line, i.Why)
				if i.Kind != "" {
					name = fmt.Sprintf("%s %s/%s (%s)", i.APIVersion, i.Kind, i.Name, i.Why)
				}
			}
			names = append(names, name)
		}
		_, _ = fmt.Fprintf(w, "Not judged (the operator manages apps/v1 Deployments, StatefulSets and DaemonSets): %s\n", strings.Join(names, ", "))
	}
	counts := r.counts()
	_, err := fmt.Fprintf(w, "%d workload(s), %d probe(s): %d will break, %d fixed by a policy, %d already redirected.\n",
		len(r.Workloads), counts.probes, counts.breaking, counts.fixed, counts.redirected)
	return err
}

// namesMeshes reports whether a workload is in a mesh other than Istio, the table then names each
// workload's mesh.
func (r Report) namesMeshes() bool {
	for _, f := range r.Workloads {
		if f.Mesh != "" && f.Mesh != v1alpha1.MeshIstio {
			return true
		}
	}
	return false
}

// why is the one sentence the table gives for a probe.
func why(f WorkloadFinding, p ProbeFinding) string {
	switch {
	case p.Verdict == FixedByPolicy:
		return p.NeedMessage + "; " + f.Message
	case p.Verdict == Redirected:
		return "the template enables the rewrite to " + p.Rewritten
	case p.Verdict == WillBreak && f.Policy != "":
		return p.NeedMessage + "; policy " + f.Policy + " is suspended"
	case p.Verdict == WillBreak:
		return p.NeedMessage + "; no ProbeRedirectPolicy selects the workload"
	case p.Verdict == OptedOut:
		return f.Message + ", but " + p.NeedMessage
	case p.Verdict == Unsupported:
		return f.Message
	}
	return p.Message
}

type counts struct{ probes, breaking, fixed, redirected int }

func (r Report) counts() counts {
	var c counts
	for _, f := range r.Workloads {
		for _, p := range f.Probes {
			c.probes++
			switch {
			case p.Breaks:
				c.breaking++
			case p.Verdict == FixedByPolicy:
				c.fixed++
			case p.Verdict == Redirected:
				c.redirected++
			}
		}
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SARIF rules: one per verdict a pull request should hear about.
var sarifRules = []struct {
	verdict     Verdict
	level       string
	description string
}{
	{WillBreak, "error", "A kubelet probe needs redirecting through the mesh agent, and nothing in the manifests redirects it: under STRICT mTLS HTTP and gRPC probes are reset, and TCP probes pass even when the app is down."},
	{OptedOut, "error", "The pod template turns the mesh's probe rewrite off (Istio's sidecar.istio.io/rewriteAppHTTPProbers, Kuma's kuma.io/application-probe-proxy-port), but a probe needs it, so the probe will misreport."},
	{Unsupported, "error", "Redirecting this probe through the mesh agent would break it (or the template's mesh annotations are invalid); the operator leaves the workload alone."},
	{FixedByPolicy, "note", "A ProbeRedirectPolicy in the manifests will redirect this probe."},
}

// SARIF returns the report as a SARIF 2.1.0 log, for code-scanning annotations on a pull request:
// one result per probe that breaks or that a policy fixes, located at the workload's document, with
// the workload's mesh in the result's properties ("mesh").
func (r Report) SARIF() (*sarif.Report, error) {
	log := report.NewV210Report()
	run := sarif.NewRunWithInformationURI("probe-redirect", "https://github.com/proberedirect/probe-redirect-operator")
	levels := map[Verdict]string{}
	for _, rule := range sarifRules {
		run.AddRule(string(rule.verdict)).WithDescription(rule.description)
		levels[rule.verdict] = rule.level
	}
	for _, f := range r.Workloads {
		for _, p := range f.Probes {
			level, ok := levels[p.Verdict]
			if !ok || (!p.Breaks && p.Verdict != FixedByPolicy) {
				continue
			}
			message := fmt.Sprintf("%s %s/%s, container %q %s probe %s: %s", f.Kind, f.Namespace, f.Name, p.Container,
				strings.ToLower(string(p.Kind)), p.Original, why(f, p))
			result := run.CreateResultForRule(string(p.Verdict)).WithLevel(level).WithMessage(sarif.NewTextMessage(message))
			if f.Mesh != "" {
				result.WithProperties(sarif.NewPropertyBag().Add("mesh", string(f.Mesh)))
			}
			location := sarif.NewLocation().WithLogicalLocations([]*sarif.LogicalLocation{
				sarif.NewLogicalLocation().WithFullyQualifiedName(fmt.Sprintf("%s/%s/%s/%s", f.Namespace, f.Kind, f.Name, p.Container)).WithKind("object"),
			})
			if f.Source.File != "" {
				run.AddDistinctArtifact(f.Source.File)
				location.WithPhysicalLocation(sarif.NewPhysicalLocation().
					WithArtifactLocation(sarif.NewSimpleArtifactLocation(f.Source.File)).
					WithRegion(sarif.NewSimpleRegion(max(f.Source.Line, 1), max(f.Source.Line, 1))))
			}
			result.AddLocation(location)
		}
	}
	log.AddRun(run)
	return log, log.Validate()
}
