// Package crosscheck holds tests only: they compare the operator's own
// Istio rules (internal/mesh/istio) with Istio's code from the
// istio.io/istio module on generated inputs, so that a mistake in the
// operator's reading of Istio shows up as a disagreement.
package crosscheck
