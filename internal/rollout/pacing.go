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

package rollout

import "time"

// Expired says whether a rollout started at startedAt has passed its deadline at now, that is
// whether now is strictly after startedAt+deadline. A zero startedAt (never started) or a deadline
// of zero or less (no deadline) never expires.
func Expired(startedAt, now time.Time, deadline time.Duration) bool {
	if startedAt.IsZero() || deadline <= 0 {
		return false
	}
	return now.After(startedAt.Add(deadline))
}

// Admit returns how many of the queued workloads may start rolling now: maxConcurrent minus
// inFlight, never less than 0 and never more than queued. It returns 0 while paused (pauseOnFailure
// with a failed rollout).
func Admit(queued, inFlight int, maxConcurrent int32, paused bool) int {
	if paused || queued <= 0 {
		return 0
	}
	free := int(maxConcurrent) - max(inFlight, 0)
	return max(0, min(free, queued))
}
