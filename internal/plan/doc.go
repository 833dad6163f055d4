// Package plan decides, from a snapshot of what the controller observed, what a ProbeRedirectPolicy
// should do next and what its status says: which workloads to annotate or restore now, the state of
// every selected workload and probe, the conditions, and the Events worth recording.
//
// It is pure: it never talks to the API server, so every decision is table-tested without a
// cluster. The controller gathers the Input, calls Decide or DecideRestore, carries out the
// Decision, and writes the status once.
package plan
