// Package analyze judges workload manifests the way the operator would judge the live cluster,
// before they are applied: for every workload and probe it says whether the probe needs
// redirecting (and why, from the effective mTLS mode per port), whether a ProbeRedirectPolicy in
// the input will redirect it, whether its template already enables the rewrite, and which
// probes will break in the mesh as the manifests stand.
//
// It is the second front end of internal/plan: the verdicts come from plan.Decide, the same
// function the reconciler calls, so a pull request and the live cluster get one judgement. It
// is pure: it reads objects already decoded (DecodeManifests) and never talks to a cluster.
package analyze
