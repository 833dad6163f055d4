// Package meshdouble is a TEST DOUBLE of Istio's sidecar injector (the
// mutating admission webhook served by istiod), and the test ground's
// kubelet side (VerdictRules, VerdictWebhook), which the real injector uses
// too. The end-to-end tests and the demo run Istio's own injector
// (test/istio, bin/istio-injector); the double stays for the one place that
// cannot have that binary: localcluster's --mesh=double, for a machine where
// the istio.io/istio module cannot be built. The operator's non-test code
// must never import it.
//
// # What it covers
//
// Only the parts of injection that this project depends on:
//
//   - Inject adds a small istio-proxy container to spec.containers (unless a
//     container of that name already exists in containers or initContainers)
//     and the sidecar.istio.io/status annotation, so a pod is recognisably
//     injected.
//   - The probe rewrite of istio/istio pkg/kube/inject/app_probe.go and
//     webhook.go (applyRewrite, ShouldRewriteAppHTTPProbers, DumpAppProbers,
//     patchRewriteProbe, convertAppProber, convertAppLifecycleHandler,
//     mergeOrAppendProbers), reimplemented here from the rules in
//     shared/reference/mesh-probes.md §1.1–1.11: the
//     sidecar.istio.io/rewriteAppHTTPProbers annotation (strconv.ParseBool,
//     otherwise the mesh default); readiness, liveness and startup probes and
//     (Istio ≥ 1.25) preStop/postStart hooks of every container and init
//     container except istio-proxy; httpGet kept with port and path replaced
//     and HTTPS turned into HTTP; tcpSocket and grpc replaced by an httpGet;
//     exec untouched; the ISTIO_KUBE_APP_PROBERS document on istio-proxy with
//     named ports resolved through the same container's ports, entries whose
//     port already equals the mesh status port skipped, "{}" never written,
//     and an existing value merged (existing entries win); the
//     status.sidecar.istio.io/port annotation moving the kubelet target.
//   - Webhook serves that mutation as a MutatingAdmissionWebhook ("/inject")
//     for a real kube-apiserver, deciding which pods to inject with
//     mesh.Injection (the default istio-discovery webhook selectors and
//     injectRequired) and answering with a JSON Patch.
//
// The rewrite is implemented independently of the operator's own probe logic
// (internal/mesh/istio); it reuses only constants and StatusPort from
// there, so agreement between the two is evidence, not tautology.
//
// # What it does not cover
//
// Everything else istiod does: the istio-init / istio-validation containers,
// volumes, the full proxy container (resources, security context, most env,
// holdApplicationUntilProxyStarts ordering), native-sidecar placement (the
// double always adds istio-proxy to spec.containers, while Istio with native
// sidecars enabled, as in the golden files, puts it in initContainers with
// restartPolicy Always; the rewrite is the same either way), revisions and tags, injection templates,
// neverInjectSelector/alwaysInjectSelector, proxy.istio.io/config, the
// traffic.* annotations, annotation validation other than the status port,
// reinvocation, and the pilot-agent that would serve the rewritten probes.
// Nothing in a pod injected by the double actually runs.
//
// # How it is proven
//
// TestDoubleMatchesIstioGoldenFiles runs the double over every input of
// Istio's own injector golden files (istio/istio
// pkg/kube/inject/testdata/inject, read in place from
// shared/fixtures/istio-inject) and requires, for every non-proxy container
// and init container, the same readiness, liveness and startup probes and
// lifecycle hooks as Istio produced, and an ISTIO_KUBE_APP_PROBERS document
// equal (as parsed JSON) to the one on Istio's istio-proxy. Behaviour that the
// golden files do not show (gRPC, merging, the status-port skip, invalid
// annotations) is pinned by unit tests written from the Istio source rules.
package meshdouble
