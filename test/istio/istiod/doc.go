// Package istiod runs Istio's own code for the test ground, from the
// istio.io/istio module: the istio-discovery chart rendered by Istio's
// renderer (Render), the sidecar injection webhook (NewInjector), and the
// PeerAuthentication resolution istiod pushes to proxies (NewMTLS). The
// operator's module never imports it: it lives in its own Go module
// (test/istio) so that the operator stays lean.
package istiod

import istiolog "istio.io/istio/pkg/log"

// Istio's packages log every config event at info; the tests and the
// injector's log want only Istio's errors.
func init() {
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(istiolog.ErrorLevel)
	}
}
