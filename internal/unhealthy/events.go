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
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// Reason is the Event reason the kubelet uses for failed and errored probes
// (ContainerUnhealthy in kubernetes pkg/kubelet/events).
const Reason = "Unhealthy"

// MaxMessageBytes is the longest Record.Message: the API's limit on status.unhealthyPods[].lastMessage.
const MaxMessageBytes = v1alpha1.MaxMessageLength

// clockSkew is how far in the future an event may be last seen and still count, to tolerate
// clocks that differ between the kubelet, the API server and the operator.
const clockSkew = time.Minute

// Record summarises the Unhealthy events about one pod within the window.
type Record struct {
	// Pod is the pod's name (involvedObject.name).
	Pod string
	// ProbeKind is the probe named by the latest event's message, or "" when it names none.
	ProbeKind v1alpha1.ProbeKind
	// Container is the container whose probe failed, read from the latest event's
	// involvedObject.fieldPath; "" when the event names none.
	Container string
	// Count is the sum of Count over the pod's events in the window.
	Count int32
	// Message is the latest event's message, truncated to MaxMessageBytes on a UTF-8 boundary.
	Message string
	// LastSeen is when the latest event was last seen.
	LastSeen time.Time
}

// probeKinds are the probe kinds in the order the kubelet names them (kubelet prober probeType).
var probeKinds = []v1alpha1.ProbeKind{v1alpha1.ProbeReadiness, v1alpha1.ProbeLiveness, v1alpha1.ProbeStartup}

// ParseProbeKind reads the probe kind from a kubelet Unhealthy message. The kubelet writes
// "<Kind> probe failed: <output>" and "<Kind> probe errored and resulted in <state> state: <err>"
// (kubernetes pkg/kubelet/prober/prober.go), with Kind one of Readiness, Liveness and Startup; older
// kubelets also wrote "<Kind> probe failed with statuscode: <code>". The match is on that
// case-sensitive prefix; any other message, including "<Kind> probe warning: ...", gives ok=false.
func ParseProbeKind(message string) (v1alpha1.ProbeKind, bool) {
	for _, kind := range probeKinds {
		rest, found := strings.CutPrefix(message, string(kind)+" probe ")
		if !found {
			continue
		}
		if strings.HasPrefix(rest, "failed") || strings.HasPrefix(rest, "errored") {
			return kind, true
		}
		return "", false
	}
	return "", false
}

// Summarize folds Unhealthy events about Pods into one Record per pod name. It ignores events whose
// reason is not Reason, whose involvedObject.kind is not Pod or whose involvedObject.name is empty.
// It keeps an event when its LastSeen is after now-window and at most a minute (clock skew) after
// now; an event last seen exactly window before now has left the window. Counts are summed over the
// pod's kept events; ProbeKind, Message and LastSeen come from the kept event with the latest
// LastSeen (on a tie, the later one in events). A window of zero or less keeps nothing.
//
// Count is the kubelet's count for a repeated event, so an event last seen within the window also
// contributes the occurrences it aggregated before the window started.
func Summarize(events []corev1.Event, now time.Time, window time.Duration) map[string]Record {
	records := map[string]Record{}
	if window <= 0 {
		return records
	}
	oldest, newest := now.Add(-window), now.Add(clockSkew)
	for i := range events {
		e := &events[i]
		if e.Reason != Reason || e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.Name == "" {
			continue
		}
		seen := LastSeen(e)
		if !seen.After(oldest) || seen.After(newest) {
			continue
		}
		pod := e.InvolvedObject.Name
		rec, exists := records[pod]
		rec.Pod = pod
		rec.Count = addSaturating(rec.Count, Count(e))
		if !exists || !seen.Before(rec.LastSeen) {
			rec.ProbeKind, _ = ParseProbeKind(e.Message)
			rec.Container = ContainerOf(e)
			rec.Message = truncate(e.Message, MaxMessageBytes)
			rec.LastSeen = seen
		}
		records[pod] = rec
	}
	return records
}

// ContainerOf reads the container an event is about from its involvedObject.fieldPath, which the
// kubelet sets to "spec.containers{<name>}", "spec.initContainers{<name>}" or
// "spec.ephemeralContainers{<name>}" for probe events (kubernetes pkg/kubelet/container/ref.go,
// fieldPath, used by GenerateContainerRef). It returns "" for any other fieldPath.
func ContainerOf(e *corev1.Event) string {
	for _, prefix := range []string{"spec.containers{", "spec.initContainers{", "spec.ephemeralContainers{"} {
		if name, ok := strings.CutPrefix(e.InvolvedObject.FieldPath, prefix); ok {
			if name, ok := strings.CutSuffix(name, "}"); ok && name != "" && !strings.ContainsAny(name, "{}") {
				return name
			}
		}
	}
	return ""
}

// LastSeen is when e was last observed: Series.LastObservedTime if set, else LastTimestamp, else
// EventTime, else metadata.creationTimestamp. It is the zero time for a nil event or one with none.
func LastSeen(e *corev1.Event) time.Time {
	switch {
	case e == nil:
		return time.Time{}
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// Count is how many occurrences e stands for: Series.Count if Series is set, else e.Count if
// positive, else 1. A non-positive Series.Count falls through to the next rule, so Count is at
// least 1 for a non-nil event; it is 0 for a nil event.
func Count(e *corev1.Event) int32 {
	switch {
	case e == nil:
		return 0
	case e.Series != nil && e.Series.Count > 0:
		return e.Series.Count
	case e.Count > 0:
		return e.Count
	default:
		return 1
	}
}

// NextExpiry is when the earliest record leaves the window, LastSeen+window, so the caller can
// requeue then; it is the zero time when there are no records. Records with a zero LastSeen are
// ignored.
func NextExpiry(records map[string]Record, window time.Duration) time.Time {
	var next time.Time
	for _, r := range records {
		if r.LastSeen.IsZero() {
			continue
		}
		if expiry := r.LastSeen.Add(window); next.IsZero() || expiry.Before(next) {
			next = expiry
		}
	}
	return next
}

// truncate cuts s to at most n bytes without splitting a UTF-8 encoded rune. It steps back at most
// utf8.UTFMax-1 bytes, so a run of stray continuation bytes in invalid UTF-8 cannot empty the string.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut]
}

func addSaturating(a, b int32) int32 {
	if sum := int64(a) + int64(b); sum <= math.MaxInt32 {
		return int32(sum)
	}
	return math.MaxInt32
}
