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

// Package rollout decides, without talking to the API server, whether a Deployment, StatefulSet or
// DaemonSet has finished rolling out the change the operator made to its pod template. The rules are
// the ones `kubectl rollout status` applies (kubectl pkg/polymorphichelpers/rollout_status.go),
// extended with a minimum observed generation, a failed state for Deployments whose progress
// deadline was exceeded, and a blocked state for rollouts that cannot proceed without a person
// (paused Deployments and the OnDelete update strategy). It also holds the small helpers that pace
// rollouts: Expired for the operator's own deadline and Admit for the concurrency limit.
package rollout
