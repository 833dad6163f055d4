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

// Package unhealthy turns the kubelet's `Warning Unhealthy` Events (reason ContainerUnhealthy,
// written when a readiness, liveness or startup probe fails or errors) into one Record per pod:
// which probe failed, how often, the latest message and when it was last seen. It keeps only events
// last seen within a sliding window and tells the caller when the oldest record leaves that window,
// so the caller can requeue then. It is pure logic over core/v1 Events and never talks to the API
// server.
package unhealthy
