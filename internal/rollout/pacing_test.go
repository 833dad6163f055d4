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

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestExpired(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		startedAt time.Time
		now       time.Time
		deadline  time.Duration
		want      bool
	}{
		{name: "before the deadline", startedAt: start, now: start.Add(9 * time.Minute), deadline: 10 * time.Minute, want: false},
		{name: "exactly at the deadline", startedAt: start, now: start.Add(10 * time.Minute), deadline: 10 * time.Minute, want: false},
		{name: "just past the deadline", startedAt: start, now: start.Add(10*time.Minute + time.Nanosecond), deadline: 10 * time.Minute, want: true},
		{name: "long past the deadline", startedAt: start, now: start.Add(time.Hour), deadline: 10 * time.Minute, want: true},
		{name: "now before startedAt (clock skew)", startedAt: start, now: start.Add(-time.Hour), deadline: 10 * time.Minute, want: false},
		{name: "zero startedAt never expires", startedAt: time.Time{}, now: start, deadline: 10 * time.Minute, want: false},
		{name: "zero deadline never expires", startedAt: start, now: start.Add(time.Hour), deadline: 0, want: false},
		{name: "negative deadline never expires", startedAt: start, now: start.Add(time.Hour), deadline: -time.Minute, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Expired(tt.startedAt, tt.now, tt.deadline)).To(Equal(tt.want))
		})
	}
}

func TestAdmit(t *testing.T) {
	tests := []struct {
		name          string
		queued        int
		inFlight      int
		maxConcurrent int32
		paused        bool
		want          int
	}{
		{name: "free slots above queue admits the whole queue", queued: 2, inFlight: 0, maxConcurrent: 5, want: 2},
		{name: "queue above free slots admits the free slots", queued: 10, inFlight: 1, maxConcurrent: 3, want: 2},
		{name: "all slots in flight admits none", queued: 4, inFlight: 3, maxConcurrent: 3, want: 0},
		{name: "more in flight than allowed admits none", queued: 4, inFlight: 5, maxConcurrent: 3, want: 0},
		{name: "default of one with nothing in flight admits one", queued: 4, inFlight: 0, maxConcurrent: 1, want: 1},
		{name: "empty queue admits none", queued: 0, inFlight: 0, maxConcurrent: 3, want: 0},
		{name: "negative queue admits none", queued: -1, inFlight: 0, maxConcurrent: 3, want: 0},
		{name: "zero maxConcurrent admits none", queued: 4, inFlight: 0, maxConcurrent: 0, want: 0},
		{name: "paused admits none", queued: 4, inFlight: 0, maxConcurrent: 3, paused: true, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Admit(tt.queued, tt.inFlight, tt.maxConcurrent, tt.paused)).To(Equal(tt.want))
		})
	}
}
