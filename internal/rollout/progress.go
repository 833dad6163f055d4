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
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// progressDeadlineExceeded is the Progressing condition reason the Deployment controller sets when
// spec.progressDeadlineSeconds passes (TimedOutReason in kubectl pkg/util/deployment).
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// Progress is the state of one workload's rollout. At most one of Complete, Failed and Blocked is
// set; when none is, the rollout is still under way.
type Progress struct {
	// Complete is true when kubectl rollout status would say "successfully rolled out".
	Complete bool
	// Failed is true when the Deployment's Progressing condition has reason ProgressDeadlineExceeded.
	Failed bool
	// Blocked is "" or why the rollout cannot proceed without a person:
	// StatusReasonDeploymentPaused or StatusReasonOnDeleteStrategy.
	Blocked v1alpha1.StatusReason
	// Message is kubectl-like text describing the state.
	Message string
}

// DeploymentProgress reports the rollout of d by the rules of kubectl's DeploymentStatusViewer.
// minGeneration is the generation the caller's change produced (0 when unknown); the rollout is not
// complete until status.observedGeneration has reached both it and metadata.generation. A nil
// spec.replicas counts as 1, the API server default. A paused Deployment that is not complete is
// blocked.
func DeploymentProgress(d *appsv1.Deployment, minGeneration int64) Progress {
	if d == nil {
		return Progress{Message: "Waiting for deployment to be observed"}
	}
	p := deploymentStatus(d, minGeneration)
	if d.Spec.Paused && !p.Complete && !p.Failed {
		p.Blocked = v1alpha1.StatusReasonDeploymentPaused
		p.Message = fmt.Sprintf("deployment %q is paused: resume it to continue the rollout", d.Name)
	}
	return p
}

func deploymentStatus(d *appsv1.Deployment, minGeneration int64) Progress {
	st := d.Status
	if !observed(d.Generation, minGeneration, st.ObservedGeneration) {
		return Progress{Message: "Waiting for deployment spec update to be observed"}
	}
	for i := range st.Conditions {
		c := st.Conditions[i]
		if c.Type == appsv1.DeploymentProgressing && c.Reason == progressDeadlineExceeded {
			return Progress{Failed: true, Message: fmt.Sprintf("deployment %q exceeded its progress deadline", d.Name)}
		}
	}
	replicas := replicasOrDefault(d.Spec.Replicas)
	if st.UpdatedReplicas < replicas {
		return Progress{Message: fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated",
			d.Name, st.UpdatedReplicas, replicas)}
	}
	if st.Replicas > st.UpdatedReplicas {
		return Progress{Message: fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination",
			d.Name, st.Replicas-st.UpdatedReplicas)}
	}
	if st.AvailableReplicas < st.UpdatedReplicas {
		return Progress{Message: fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available",
			d.Name, st.AvailableReplicas, st.UpdatedReplicas)}
	}
	return Progress{Complete: true, Message: fmt.Sprintf("deployment %q successfully rolled out", d.Name)}
}

// StatefulSetProgress reports the rollout of s by the rules of kubectl's StatefulSetStatusViewer,
// with minGeneration as in DeploymentProgress and a nil spec.replicas counting as 1. With
// spec.updateStrategy.rollingUpdate.partition set, the rollout is complete once updatedReplicas
// reaches replicas minus the partition; otherwise it waits for updateRevision to equal
// currentRevision. With the OnDelete strategy the rollout is blocked unless the generation is
// observed, updateRevision equals currentRevision and readyReplicas reaches replicas.
func StatefulSetProgress(s *appsv1.StatefulSet, minGeneration int64) Progress {
	if s == nil {
		return Progress{Message: "Waiting for statefulset to be observed"}
	}
	st := s.Status
	replicas := replicasOrDefault(s.Spec.Replicas)
	isObserved := st.ObservedGeneration != 0 && observed(s.Generation, minGeneration, st.ObservedGeneration)

	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		if isObserved && st.UpdateRevision == st.CurrentRevision && st.ReadyReplicas >= replicas {
			return Progress{Complete: true, Message: fmt.Sprintf("statefulset rolling update complete %d pods at revision %s",
				st.CurrentReplicas, st.CurrentRevision)}
		}
		return Progress{Blocked: v1alpha1.StatusReasonOnDeleteStrategy, Message: fmt.Sprintf(
			"statefulset %q uses the OnDelete update strategy: its pods must be deleted to roll out the new template (%d of %d pods updated)",
			s.Name, st.UpdatedReplicas, replicas)}
	}

	if !isObserved {
		return Progress{Message: "Waiting for statefulset spec update to be observed"}
	}
	if st.ReadyReplicas < replicas {
		return Progress{Message: fmt.Sprintf("Waiting for %d pods to be ready", replicas-st.ReadyReplicas)}
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		want := replicas - *ru.Partition
		if st.UpdatedReplicas < want {
			return Progress{Message: fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated",
				st.UpdatedReplicas, want)}
		}
		return Progress{Complete: true, Message: fmt.Sprintf("partitioned roll out complete: %d new pods have been updated", st.UpdatedReplicas)}
	}
	if st.UpdateRevision != st.CurrentRevision {
		return Progress{Message: fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s",
			st.UpdatedReplicas, st.UpdateRevision)}
	}
	return Progress{Complete: true, Message: fmt.Sprintf("statefulset rolling update complete %d pods at revision %s",
		st.CurrentReplicas, st.CurrentRevision)}
}

// DaemonSetProgress reports the rollout of d by the rules of kubectl's DaemonSetStatusViewer, with
// minGeneration as in DeploymentProgress. With the OnDelete strategy the same checks decide
// completion, and a rollout that is not complete is blocked.
func DaemonSetProgress(d *appsv1.DaemonSet, minGeneration int64) Progress {
	if d == nil {
		return Progress{Message: "Waiting for daemon set to be observed"}
	}
	p := daemonSetStatus(d, minGeneration)
	if d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType && !p.Complete {
		st := d.Status
		p.Blocked = v1alpha1.StatusReasonOnDeleteStrategy
		p.Message = fmt.Sprintf(
			"daemon set %q uses the OnDelete update strategy: its pods must be deleted to roll out the new template (%d of %d pods updated)",
			d.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	}
	return p
}

func daemonSetStatus(d *appsv1.DaemonSet, minGeneration int64) Progress {
	st := d.Status
	if !observed(d.Generation, minGeneration, st.ObservedGeneration) {
		return Progress{Message: "Waiting for daemon set spec update to be observed"}
	}
	if st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return Progress{Message: fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated",
			d.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled)}
	}
	if st.NumberAvailable < st.DesiredNumberScheduled {
		return Progress{Message: fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available",
			d.Name, st.NumberAvailable, st.DesiredNumberScheduled)}
	}
	return Progress{Complete: true, Message: fmt.Sprintf("daemon set %q successfully rolled out", d.Name)}
}

// observed reports whether the controller has seen both the object's current generation and the
// generation the caller's change produced.
func observed(generation, minGeneration, observedGeneration int64) bool {
	return observedGeneration >= generation && observedGeneration >= minGeneration
}

func replicasOrDefault(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
