/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package mtls computes the effective Istio PeerAuthentication mode for a workload and one of its
// container ports, following the precedence of Istio's ComposePeerAuthentication: the oldest
// mesh-wide policy (root namespace, no selector), then the oldest namespace-wide policy, then the
// oldest matching workload policy, each overriding the previous one unless its mode is UNSET, with
// PERMISSIVE when nothing applies; portLevelMtls comes from the chosen workload policy only. The
// controllers need this to decide whether kubelet probes would hit a STRICT port. The package is
// pure logic over a snapshot of PeerAuthentications that the caller lists: it never talks to the
// API server, so it can be table-tested without a client.
package mtls
