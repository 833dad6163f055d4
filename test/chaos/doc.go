// Package chaos holds the reliability tests (`make test-chaos`, build tag
// chaos): the operator as a process on a local control plane with Istio's own
// injector, killed with SIGKILL mid-rollout, cut off from its API server,
// run as two replicas with leader election, racing another field manager's
// edits, and started before the mesh's CRDs exist. Each test prints its
// figure (restarts survived, edits kept, seconds to recover) and fails when
// anything was lost or rolled twice.
package chaos
