package unhealthy

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzUnhealthyEvent feeds arbitrary kubelet event messages, field paths, counts and times to the
// Unhealthy event parser: no input may panic, a parsed kind is one of the three probe kinds, and
// Summarize never keeps an event outside its window.
func FuzzUnhealthyEvent(f *testing.F) {
	f.Add("Readiness probe failed: Get \"http://10.0.0.1:80/\": read: connection reset by peer", "spec.containers{nginx}", int32(3), int64(30), int64(600))
	f.Add("Liveness probe errored and resulted in unknown state: rpc error", "spec.initContainers{db}", int32(0), int64(-5), int64(1))
	f.Add("Startup probe failed with statuscode: 500", "spec.containers{", int32(-1), int64(1<<40), int64(0))
	f.Add("Readiness probe warning: slow", "", int32(1), int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, message, fieldPath string, count int32, ageSeconds, windowSeconds int64) {
		if kind, ok := ParseProbeKind(message); ok && kind != "Readiness" && kind != "Liveness" && kind != "Startup" {
			t.Fatalf("ParseProbeKind(%q) = %q", message, kind)
		}
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		seen := now.Add(-time.Duration(ageSeconds%(1<<33)) * time.Second)
		e := corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "e", Namespace: "ns"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "pod", FieldPath: fieldPath},
			Reason:         Reason, Message: message, Count: count, Type: corev1.EventTypeWarning,
			LastTimestamp: metav1.NewTime(seen), EventTime: metav1.NewMicroTime(seen),
		}
		_ = ContainerOf(&e)
		_ = Count(&e)
		_ = LastSeen(&e)
		window := time.Duration(windowSeconds%(1<<33)) * time.Second
		records := Summarize([]corev1.Event{e}, now, window)
		for pod, r := range records {
			if pod != "pod" {
				t.Fatalf("record for %q, want only pod", pod)
			}
			if !r.LastSeen.After(now.Add(-window)) || r.LastSeen.After(now.Add(time.Minute)) {
				t.Fatalf("kept an event last seen %s, outside (%s, %s]", r.LastSeen, now.Add(-window), now.Add(time.Minute))
			}
		}
		_ = NextExpiry(records, window)
	})
}
