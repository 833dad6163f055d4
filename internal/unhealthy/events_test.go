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

package unhealthy

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const window = 10 * time.Minute

// event builds a kubelet-style Unhealthy event about pod, last seen at ago before now.
func event(pod string, ago time.Duration, count int32, message string, mutate ...func(*corev1.Event)) corev1.Event {
	e := corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: pod + ".1829", Namespace: "shop", CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: pod, FieldPath: "spec.containers{app}"},
		Reason:         Reason,
		Type:           corev1.EventTypeWarning,
		Message:        message,
		Count:          count,
		FirstTimestamp: metav1.NewTime(now.Add(-time.Hour)),
		LastTimestamp:  metav1.NewTime(now.Add(-ago)),
	}
	for _, m := range mutate {
		m(&e)
	}
	return e
}

func TestParseProbeKind(t *testing.T) {
	tests := []struct {
		message  string
		wantKind v1alpha1.ProbeKind
		wantOK   bool
	}{
		{message: `Readiness probe failed: Get "http://10.0.0.7:8080/ready": dial tcp 10.0.0.7:8080: connect: connection refused`, wantKind: v1alpha1.ProbeReadiness, wantOK: true},
		{message: "Readiness probe failed: HTTP probe failed with statuscode: 503", wantKind: v1alpha1.ProbeReadiness, wantOK: true},
		{message: "Readiness probe failed with statuscode: 500", wantKind: v1alpha1.ProbeReadiness, wantOK: true},
		{message: "Liveness probe failed: command timed out", wantKind: v1alpha1.ProbeLiveness, wantOK: true},
		{message: "Liveness probe errored and resulted in unknown state: rpc error: code = Unknown", wantKind: v1alpha1.ProbeLiveness, wantOK: true},
		{message: "Startup probe failed: dial tcp 10.0.0.7:9000: i/o timeout", wantKind: v1alpha1.ProbeStartup, wantOK: true},
		{message: "Startup probe errored: exec failed", wantKind: v1alpha1.ProbeStartup, wantOK: true},
		{message: "Readiness probe warning: Probe terminated redirects", wantOK: false},
		{message: "readiness probe failed: lower case is not what the kubelet writes", wantOK: false},
		{message: " Readiness probe failed: leading space", wantOK: false},
		{message: "ReadinessGate probe failed: not a probe kind", wantOK: false},
		{message: "Back-off restarting failed container", wantOK: false},
		{message: "Readiness probe", wantOK: false},
		{message: "", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			g := NewWithT(t)
			kind, ok := ParseProbeKind(tt.message)
			g.Expect(ok).To(Equal(tt.wantOK))
			g.Expect(kind).To(Equal(tt.wantKind))
		})
	}
}

func TestLastSeen(t *testing.T) {
	series := metav1.NewMicroTime(now.Add(-1 * time.Minute))
	last := metav1.NewTime(now.Add(-2 * time.Minute))
	eventTime := metav1.NewMicroTime(now.Add(-3 * time.Minute))
	created := metav1.NewTime(now.Add(-4 * time.Minute))
	tests := []struct {
		name string
		e    *corev1.Event
		want time.Time
	}{
		{name: "nil event", e: nil, want: time.Time{}},
		{name: "no timestamps", e: &corev1.Event{}, want: time.Time{}},
		{
			name: "series last observed time wins",
			e: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}, EventTime: eventTime, LastTimestamp: last,
				Series: &corev1.EventSeries{Count: 2, LastObservedTime: series},
			},
			want: series.Time,
		},
		{
			name: "series without last observed time falls back to lastTimestamp",
			e: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}, EventTime: eventTime, LastTimestamp: last,
				Series: &corev1.EventSeries{Count: 2},
			},
			want: last.Time,
		},
		{
			name: "lastTimestamp before eventTime",
			e:    &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}, EventTime: eventTime, LastTimestamp: last},
			want: last.Time,
		},
		{
			name: "eventTime before creationTimestamp",
			e:    &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}, EventTime: eventTime},
			want: eventTime.Time,
		},
		{
			name: "creationTimestamp last",
			e:    &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}},
			want: created.Time,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(LastSeen(tt.e)).To(BeTemporally("==", tt.want))
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		name string
		e    *corev1.Event
		want int32
	}{
		{name: "nil event", e: nil, want: 0},
		{name: "series count wins over count", e: &corev1.Event{Count: 3, Series: &corev1.EventSeries{Count: 7}}, want: 7},
		{name: "series with zero count falls back to count", e: &corev1.Event{Count: 3, Series: &corev1.EventSeries{}}, want: 3},
		{name: "count", e: &corev1.Event{Count: 3}, want: 3},
		{name: "zero count is one", e: &corev1.Event{}, want: 1},
		{name: "negative count is one", e: &corev1.Event{Count: -2}, want: 1},
		{name: "series with zero count and no count is one", e: &corev1.Event{Series: &corev1.EventSeries{}}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Count(tt.e)).To(Equal(tt.want))
		})
	}
}

func TestSummarize(t *testing.T) {
	const (
		readiness = "Readiness probe failed: HTTP probe failed with statuscode: 503"
		liveness  = "Liveness probe failed: connection refused"
	)
	tests := []struct {
		name   string
		events []corev1.Event
		window time.Duration
		want   map[string]Record
	}{
		{
			name:   "no events",
			events: nil,
			window: window,
			want:   map[string]Record{},
		},
		{
			name:   "one event",
			events: []corev1.Event{event("web-1", time.Minute, 4, readiness)},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 4, Message: readiness, LastSeen: now.Add(-time.Minute)},
			},
		},
		{
			name: "several events for one pod: counts summed, latest message and kind win regardless of order",
			events: []corev1.Event{
				event("web-1", 2*time.Minute, 5, liveness),
				event("web-1", 30*time.Second, 2, readiness),
				event("web-1", 5*time.Minute, 1, "Startup probe failed: timeout"),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 8, Message: readiness, LastSeen: now.Add(-30 * time.Second)},
			},
		},
		{
			name: "the container comes from the latest event's fieldPath",
			events: []corev1.Event{
				event("web-1", 2*time.Minute, 1, liveness),
				event("web-1", time.Minute, 1, readiness, func(e *corev1.Event) { e.InvolvedObject.FieldPath = "spec.initContainers{db-proxy}" }),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "db-proxy", ProbeKind: v1alpha1.ProbeReadiness, Count: 2, Message: readiness, LastSeen: now.Add(-time.Minute)},
			},
		},
		{
			name: "latest message naming no probe kind clears the kind",
			events: []corev1.Event{
				event("web-1", 2*time.Minute, 1, liveness),
				event("web-1", time.Minute, 1, "Container is unhealthy"),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", Count: 2, Message: "Container is unhealthy", LastSeen: now.Add(-time.Minute)},
			},
		},
		{
			name: "equal last-seen times: the later event in the list wins",
			events: []corev1.Event{
				event("web-1", time.Minute, 1, liveness),
				event("web-1", time.Minute, 1, readiness),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 2, Message: readiness, LastSeen: now.Add(-time.Minute)},
			},
		},
		{
			name: "one record per pod",
			events: []corev1.Event{
				event("web-1", time.Minute, 1, readiness),
				event("web-2", 2*time.Minute, 3, liveness),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 1, Message: readiness, LastSeen: now.Add(-time.Minute)},
				"web-2": {Pod: "web-2", Container: "app", ProbeKind: v1alpha1.ProbeLiveness, Count: 3, Message: liveness, LastSeen: now.Add(-2 * time.Minute)},
			},
		},
		{
			name: "series count and last observed time are used",
			events: []corev1.Event{
				event("web-1", time.Hour, 2, readiness, func(e *corev1.Event) {
					e.Series = &corev1.EventSeries{Count: 9, LastObservedTime: metav1.NewMicroTime(now.Add(-time.Minute))}
				}),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 9, Message: readiness, LastSeen: now.Add(-time.Minute)},
			},
		},
		{
			name: "events.k8s.io-style event with only eventTime and no count counts once",
			events: []corev1.Event{
				event("web-1", 0, 0, readiness, func(e *corev1.Event) {
					e.LastTimestamp = metav1.Time{}
					e.EventTime = metav1.NewMicroTime(now.Add(-3 * time.Minute))
				}),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 1, Message: readiness, LastSeen: now.Add(-3 * time.Minute)},
			},
		},
		{
			name: "window edges: just inside is kept, exactly at and beyond the edge are dropped",
			events: []corev1.Event{
				event("inside", window-time.Nanosecond, 1, readiness),
				event("edge", window, 1, readiness),
				event("outside", window+time.Second, 1, readiness),
			},
			window: window,
			want: map[string]Record{
				"inside": {Pod: "inside", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 1, Message: readiness, LastSeen: now.Add(-window + time.Nanosecond)},
			},
		},
		{
			name: "events outside the window do not add to the count or the message",
			events: []corev1.Event{
				event("web-1", window+time.Minute, 50, liveness),
				event("web-1", time.Minute, 1, readiness),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 1, Message: readiness, LastSeen: now.Add(-time.Minute)},
			},
		},
		{
			name: "clock skew: up to a minute in the future is kept, more is dropped",
			events: []corev1.Event{
				event("now", 0, 1, readiness),
				event("skewed", -time.Minute, 1, readiness),
				event("future", -time.Minute-time.Nanosecond, 1, readiness),
			},
			window: window,
			want: map[string]Record{
				"now":    {Pod: "now", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 1, Message: readiness, LastSeen: now},
				"skewed": {Pod: "skewed", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: 1, Message: readiness, LastSeen: now.Add(time.Minute)},
			},
		},
		{
			name: "event without any timestamp is dropped",
			events: []corev1.Event{
				event("web-1", 0, 1, readiness, func(e *corev1.Event) {
					e.LastTimestamp = metav1.Time{}
					e.CreationTimestamp = metav1.Time{}
				}),
			},
			window: window,
			want:   map[string]Record{},
		},
		{
			name: "events about non-pods, other reasons or unnamed pods are ignored",
			events: []corev1.Event{
				event("web", time.Minute, 1, readiness, func(e *corev1.Event) { e.InvolvedObject.Kind = "Deployment" }),
				event("node-1", time.Minute, 1, readiness, func(e *corev1.Event) { e.InvolvedObject.Kind = "Node" }),
				event("web-1", time.Minute, 1, "Back-off restarting failed container", func(e *corev1.Event) { e.Reason = "BackOff" }),
				event("web-1", time.Minute, 1, "Readiness probe warning: redirect", func(e *corev1.Event) { e.Reason = "ProbeWarning" }),
				event("web-1", time.Minute, 1, readiness, func(e *corev1.Event) { e.Reason = "unhealthy" }),
				event("", time.Minute, 1, readiness),
			},
			window: window,
			want:   map[string]Record{},
		},
		{
			name:   "zero window keeps nothing",
			events: []corev1.Event{event("web-1", 0, 1, readiness)},
			window: 0,
			want:   map[string]Record{},
		},
		{
			name: "count saturates instead of overflowing",
			events: []corev1.Event{
				event("web-1", 2*time.Minute, math.MaxInt32, readiness),
				event("web-1", time.Minute, 5, readiness),
			},
			window: window,
			want: map[string]Record{
				"web-1": {Pod: "web-1", Container: "app", ProbeKind: v1alpha1.ProbeReadiness, Count: math.MaxInt32, Message: readiness, LastSeen: now.Add(-time.Minute)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Summarize(tt.events, now, tt.window)).To(Equal(tt.want))
		})
	}
}

func TestSummarizeTruncatesMessage(t *testing.T) {
	prefix := "Readiness probe failed: "
	tests := []struct {
		name    string
		message string
		want    string
	}{
		{name: "short message is kept", message: prefix + "503", want: prefix + "503"},
		{
			name:    "exactly the limit is kept",
			message: prefix + strings.Repeat("a", MaxMessageBytes-len(prefix)),
			want:    prefix + strings.Repeat("a", MaxMessageBytes-len(prefix)),
		},
		{
			name:    "ASCII is cut at the limit",
			message: prefix + strings.Repeat("a", 2*MaxMessageBytes),
			want:    prefix + strings.Repeat("a", MaxMessageBytes-len(prefix)),
		},
		{
			// 1000 bytes of prefix+padding, then 3-byte runes: 1000 + 8*3 = 1024 exactly, the 9th rune would straddle.
			name:    "multi-byte rune at the boundary is cut whole",
			message: prefix + strings.Repeat("a", 1000-len(prefix)) + strings.Repeat("€", 9),
			want:    prefix + strings.Repeat("a", 1000-len(prefix)) + strings.Repeat("€", 8),
		},
		{
			// 1022 bytes then a 4-byte rune: the rune would end at byte 1026, so it goes.
			name:    "rune straddling the limit is dropped",
			message: prefix + strings.Repeat("a", 1022-len(prefix)) + "😀tail",
			want:    prefix + strings.Repeat("a", 1022-len(prefix)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := Summarize([]corev1.Event{event("web-1", time.Minute, 1, tt.message)}, now, window)
			g.Expect(got).To(HaveKey("web-1"))
			msg := got["web-1"].Message
			g.Expect(msg).To(Equal(tt.want))
			g.Expect(len(msg)).To(BeNumerically("<=", MaxMessageBytes))
			g.Expect(utf8.ValidString(msg)).To(BeTrue())
			g.Expect(got["web-1"].ProbeKind).To(Equal(v1alpha1.ProbeReadiness))
		})
	}
}

func TestNextExpiry(t *testing.T) {
	tests := []struct {
		name    string
		records map[string]Record
		want    time.Time
	}{
		{name: "nil records", records: nil, want: time.Time{}},
		{name: "no records", records: map[string]Record{}, want: time.Time{}},
		{
			name:    "one record",
			records: map[string]Record{"web-1": {Pod: "web-1", LastSeen: now.Add(-time.Minute)}},
			want:    now.Add(window - time.Minute),
		},
		{
			name: "earliest record decides",
			records: map[string]Record{
				"web-1": {Pod: "web-1", LastSeen: now.Add(-time.Minute)},
				"web-2": {Pod: "web-2", LastSeen: now.Add(-7 * time.Minute)},
				"web-3": {Pod: "web-3", LastSeen: now.Add(-3 * time.Minute)},
			},
			want: now.Add(window - 7*time.Minute),
		},
		{
			name: "records with a zero LastSeen are ignored",
			records: map[string]Record{
				"web-1": {Pod: "web-1"},
				"web-2": {Pod: "web-2", LastSeen: now.Add(-2 * time.Minute)},
			},
			want: now.Add(window - 2*time.Minute),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(NextExpiry(tt.records, window)).To(BeTemporally("==", tt.want))
		})
	}
}

// TestNextExpiryDropsRecordFromSummary checks that Summarize at NextExpiry no longer holds the
// record that expires then, so requeueing at NextExpiry is enough.
func TestNextExpiryDropsRecordFromSummary(t *testing.T) {
	g := NewWithT(t)
	events := []corev1.Event{
		event("web-1", time.Minute, 1, "Readiness probe failed: 503"),
		event("web-2", 4*time.Minute, 1, "Liveness probe failed: 503"),
	}
	first := Summarize(events, now, window)
	g.Expect(first).To(HaveLen(2))
	next := NextExpiry(first, window)
	g.Expect(next).To(BeTemporally("==", now.Add(6*time.Minute)))

	later := Summarize(events, next, window)
	g.Expect(later).To(HaveLen(1))
	g.Expect(later).To(HaveKey("web-1"))
	g.Expect(Summarize(events, next.Add(-time.Nanosecond), window)).To(HaveLen(2))
}

func TestContainerOf(t *testing.T) {
	tests := []struct{ fieldPath, want string }{
		{"spec.containers{web}", "web"},
		{"spec.containers{istio-proxy}", "istio-proxy"},
		{"spec.initContainers{istio-proxy}", "istio-proxy"},
		{"spec.ephemeralContainers{debugger}", "debugger"},
		{"spec.containers[0]", ""},
		{"spec.containers{}", ""},
		{"spec.containers{web", ""},
		{"spec.containers{a}{b}", ""},
		{"", ""},
		{"metadata.name", ""},
	}
	for _, tt := range tests {
		e := &corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Pod", FieldPath: tt.fieldPath}}
		NewWithT(t).Expect(ContainerOf(e)).To(Equal(tt.want), tt.fieldPath)
	}
}
