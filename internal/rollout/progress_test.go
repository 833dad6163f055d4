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

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

func deployment(mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptrTo[int32](3)},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 2,
			Replicas:           3,
			UpdatedReplicas:    3,
			ReadyReplicas:      3,
			AvailableReplicas:  3,
		},
	}
	for _, m := range mutate {
		m(d)
	}
	return d
}

func progressing(reason string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Status.Conditions = append(d.Status.Conditions,
			appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: reason})
	}
}

func TestDeploymentProgress(t *testing.T) {
	tests := []struct {
		name          string
		d             *appsv1.Deployment
		minGeneration int64
		want          Progress
	}{
		{
			name: "nil deployment waits",
			d:    nil,
			want: Progress{Message: "Waiting for deployment to be observed"},
		},
		{
			name: "all replicas updated and available is complete",
			d:    deployment(),
			want: Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "NewReplicaSetAvailable condition does not change completion",
			d:    deployment(progressing("NewReplicaSetAvailable")),
			want: Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "generation not observed waits",
			d:    deployment(func(d *appsv1.Deployment) { d.Generation = 3 }),
			want: Progress{Message: "Waiting for deployment spec update to be observed"},
		},
		{
			name:          "minGeneration not observed waits",
			d:             deployment(),
			minGeneration: 3,
			want:          Progress{Message: "Waiting for deployment spec update to be observed"},
		},
		{
			name:          "minGeneration observed is complete",
			d:             deployment(),
			minGeneration: 2,
			want:          Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name:          "observedGeneration ahead of both generations is complete",
			d:             deployment(func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 4 }),
			minGeneration: 3,
			want:          Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "progress deadline exceeded fails",
			d: deployment(progressing("ProgressDeadlineExceeded"), func(d *appsv1.Deployment) {
				d.Status.UpdatedReplicas = 1
			}),
			want: Progress{Failed: true, Message: `deployment "web" exceeded its progress deadline`},
		},
		{
			name: "progress deadline exceeded on an unobserved generation waits",
			d: deployment(progressing("ProgressDeadlineExceeded"), func(d *appsv1.Deployment) {
				d.Generation = 3
			}),
			want: Progress{Message: "Waiting for deployment spec update to be observed"},
		},
		{
			name:          "progress deadline exceeded before minGeneration is observed waits",
			d:             deployment(progressing("ProgressDeadlineExceeded")),
			minGeneration: 3,
			want:          Progress{Message: "Waiting for deployment spec update to be observed"},
		},
		{
			name: "ProgressDeadlineExceeded on another condition type is ignored",
			d: deployment(func(d *appsv1.Deployment) {
				d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Reason: "ProgressDeadlineExceeded"}}
			}),
			want: Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "fewer updated replicas than desired waits",
			d: deployment(func(d *appsv1.Deployment) {
				d.Status.UpdatedReplicas = 1
				d.Status.Replicas = 4
			}),
			want: Progress{Message: `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated`},
		},
		{
			name: "nil replicas counts as one: nothing updated waits",
			d: deployment(func(d *appsv1.Deployment) {
				d.Spec.Replicas = nil
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1}
			}),
			want: Progress{Message: `Waiting for deployment "web" rollout to finish: 0 out of 1 new replicas have been updated`},
		},
		{
			name: "nil replicas counts as one: one updated and available is complete",
			d: deployment(func(d *appsv1.Deployment) {
				d.Spec.Replicas = nil
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
			}),
			want: Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "zero replicas is complete",
			d: deployment(func(d *appsv1.Deployment) {
				d.Spec.Replicas = ptrTo[int32](0)
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2}
			}),
			want: Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "old replicas pending termination waits",
			d:    deployment(func(d *appsv1.Deployment) { d.Status.Replicas = 5 }),
			want: Progress{Message: `Waiting for deployment "web" rollout to finish: 2 old replicas are pending termination`},
		},
		{
			name: "updated replicas not yet available waits",
			d:    deployment(func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 1 }),
			want: Progress{Message: `Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available`},
		},
		{
			name: "paused and not complete is blocked",
			d: deployment(progressing("DeploymentPaused"), func(d *appsv1.Deployment) {
				d.Spec.Paused = true
				d.Status.UpdatedReplicas = 0
			}),
			want: Progress{Blocked: v1alpha1.StatusReasonDeploymentPaused, Message: `deployment "web" is paused: resume it to continue the rollout`},
		},
		{
			name: "paused with an unobserved generation is blocked",
			d: deployment(func(d *appsv1.Deployment) {
				d.Spec.Paused = true
				d.Generation = 3
			}),
			want: Progress{Blocked: v1alpha1.StatusReasonDeploymentPaused, Message: `deployment "web" is paused: resume it to continue the rollout`},
		},
		{
			name: "paused but already complete is complete",
			d:    deployment(func(d *appsv1.Deployment) { d.Spec.Paused = true }),
			want: Progress{Complete: true, Message: `deployment "web" successfully rolled out`},
		},
		{
			name: "paused with deadline exceeded reports the failure, not the pause",
			d: deployment(progressing("ProgressDeadlineExceeded"), func(d *appsv1.Deployment) {
				d.Spec.Paused = true
				d.Status.UpdatedReplicas = 1
			}),
			want: Progress{Failed: true, Message: `deployment "web" exceeded its progress deadline`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(DeploymentProgress(tt.d, tt.minGeneration)).To(Equal(tt.want))
		})
	}
}

func statefulSet(mutate ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Generation: 2},
		Spec: appsv1.StatefulSetSpec{
			Replicas:       ptrTo[int32](3),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
		},
		Status: appsv1.StatefulSetStatus{
			ObservedGeneration: 2,
			Replicas:           3,
			ReadyReplicas:      3,
			CurrentReplicas:    3,
			UpdatedReplicas:    3,
			CurrentRevision:    "db-7f9c",
			UpdateRevision:     "db-7f9c",
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func partition(p int32) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(p)}
	}
}

func stsOnDelete(s *appsv1.StatefulSet) {
	s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
}

func stsRevisionPending(s *appsv1.StatefulSet) {
	s.Status.UpdateRevision = "db-5d8b"
	s.Status.UpdatedReplicas = 1
	s.Status.CurrentReplicas = 2
}

func TestStatefulSetProgress(t *testing.T) {
	const onDeleteBlocked = `statefulset "db" uses the OnDelete update strategy: its pods must be deleted to roll out the new template`
	tests := []struct {
		name          string
		s             *appsv1.StatefulSet
		minGeneration int64
		want          Progress
	}{
		{
			name: "nil statefulset waits",
			s:    nil,
			want: Progress{Message: "Waiting for statefulset to be observed"},
		},
		{
			name: "revisions equal and all ready is complete",
			s:    statefulSet(),
			want: Progress{Complete: true, Message: "statefulset rolling update complete 3 pods at revision db-7f9c"},
		},
		{
			name: "empty strategy type is treated as RollingUpdate",
			s:    statefulSet(func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = "" }, stsRevisionPending),
			want: Progress{Message: "waiting for statefulset rolling update to complete 1 pods at revision db-5d8b"},
		},
		{
			name: "observedGeneration zero waits",
			s: statefulSet(func(s *appsv1.StatefulSet) {
				s.Generation = 0
				s.Status.ObservedGeneration = 0
			}),
			want: Progress{Message: "Waiting for statefulset spec update to be observed"},
		},
		{
			name: "generation not observed waits",
			s:    statefulSet(func(s *appsv1.StatefulSet) { s.Generation = 3 }),
			want: Progress{Message: "Waiting for statefulset spec update to be observed"},
		},
		{
			name:          "minGeneration not observed waits",
			s:             statefulSet(),
			minGeneration: 3,
			want:          Progress{Message: "Waiting for statefulset spec update to be observed"},
		},
		{
			name: "not all replicas ready waits",
			s:    statefulSet(func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 1 }),
			want: Progress{Message: "Waiting for 2 pods to be ready"},
		},
		{
			name: "nil replicas counts as one: none ready waits",
			s: statefulSet(func(s *appsv1.StatefulSet) {
				s.Spec.Replicas = nil
				s.Status.ReadyReplicas = 0
			}),
			want: Progress{Message: "Waiting for 1 pods to be ready"},
		},
		{
			name: "nil replicas counts as one: one ready at the same revision is complete",
			s: statefulSet(func(s *appsv1.StatefulSet) {
				s.Spec.Replicas = nil
				s.Status.ReadyReplicas = 1
				s.Status.CurrentReplicas = 1
			}),
			want: Progress{Complete: true, Message: "statefulset rolling update complete 1 pods at revision db-7f9c"},
		},
		{
			name: "revisions differ without rollingUpdate waits",
			s:    statefulSet(stsRevisionPending),
			want: Progress{Message: "waiting for statefulset rolling update to complete 1 pods at revision db-5d8b"},
		},
		{
			name: "revisions differ with rollingUpdate but no partition waits",
			s: statefulSet(stsRevisionPending, func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: nil}
			}),
			want: Progress{Message: "waiting for statefulset rolling update to complete 1 pods at revision db-5d8b"},
		},
		{
			name: "partition 0 with too few updated replicas waits",
			s:    statefulSet(partition(0), stsRevisionPending),
			want: Progress{Message: "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated"},
		},
		{
			name: "partition 0 with every replica updated is complete even before revisions converge",
			s: statefulSet(partition(0), stsRevisionPending, func(s *appsv1.StatefulSet) {
				s.Status.UpdatedReplicas = 3
			}),
			want: Progress{Complete: true, Message: "partitioned roll out complete: 3 new pods have been updated"},
		},
		{
			name: "partition 2 waits for replicas minus partition",
			s: statefulSet(partition(2), stsRevisionPending, func(s *appsv1.StatefulSet) {
				s.Status.UpdatedReplicas = 0
			}),
			want: Progress{Message: "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated"},
		},
		{
			name: "partition 2 is complete once replicas minus partition are updated",
			s:    statefulSet(partition(2), stsRevisionPending),
			want: Progress{Complete: true, Message: "partitioned roll out complete: 1 new pods have been updated"},
		},
		{
			name: "partition above replicas is complete",
			s: statefulSet(partition(5), stsRevisionPending, func(s *appsv1.StatefulSet) {
				s.Status.UpdatedReplicas = 0
			}),
			want: Progress{Complete: true, Message: "partitioned roll out complete: 0 new pods have been updated"},
		},
		{
			name: "partition still waits for ready replicas first",
			s: statefulSet(partition(0), func(s *appsv1.StatefulSet) {
				s.Status.ReadyReplicas = 2
			}),
			want: Progress{Message: "Waiting for 1 pods to be ready"},
		},
		{
			name: "OnDelete with revisions equal and all ready is complete",
			s:    statefulSet(stsOnDelete),
			want: Progress{Complete: true, Message: "statefulset rolling update complete 3 pods at revision db-7f9c"},
		},
		{
			name: "OnDelete with revisions differing is blocked",
			s:    statefulSet(stsOnDelete, stsRevisionPending),
			want: Progress{Blocked: v1alpha1.StatusReasonOnDeleteStrategy, Message: onDeleteBlocked + " (1 of 3 pods updated)"},
		},
		{
			name: "OnDelete with too few ready replicas is blocked",
			s:    statefulSet(stsOnDelete, func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 2 }),
			want: Progress{Blocked: v1alpha1.StatusReasonOnDeleteStrategy, Message: onDeleteBlocked + " (3 of 3 pods updated)"},
		},
		{
			name:          "OnDelete with an unobserved generation is blocked even when revisions look equal",
			s:             statefulSet(stsOnDelete),
			minGeneration: 3,
			want:          Progress{Blocked: v1alpha1.StatusReasonOnDeleteStrategy, Message: onDeleteBlocked + " (3 of 3 pods updated)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(StatefulSetProgress(tt.s, tt.minGeneration)).To(Equal(tt.want))
		})
	}
}

func daemonSet(mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	d := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ops", Generation: 2},
		Spec: appsv1.DaemonSetSpec{
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
		},
		Status: appsv1.DaemonSetStatus{
			ObservedGeneration:     2,
			DesiredNumberScheduled: 4,
			CurrentNumberScheduled: 4,
			UpdatedNumberScheduled: 4,
			NumberReady:            4,
			NumberAvailable:        4,
		},
	}
	for _, m := range mutate {
		m(d)
	}
	return d
}

func dsOnDelete(d *appsv1.DaemonSet) {
	d.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
}

func TestDaemonSetProgress(t *testing.T) {
	const onDeleteBlocked = `daemon set "agent" uses the OnDelete update strategy: its pods must be deleted to roll out the new template`
	tests := []struct {
		name          string
		d             *appsv1.DaemonSet
		minGeneration int64
		want          Progress
	}{
		{
			name: "nil daemon set waits",
			d:    nil,
			want: Progress{Message: "Waiting for daemon set to be observed"},
		},
		{
			name: "all pods updated and available is complete",
			d:    daemonSet(),
			want: Progress{Complete: true, Message: `daemon set "agent" successfully rolled out`},
		},
		{
			name: "empty strategy type is treated as RollingUpdate",
			d:    daemonSet(func(d *appsv1.DaemonSet) { d.Spec.UpdateStrategy.Type = "" }),
			want: Progress{Complete: true, Message: `daemon set "agent" successfully rolled out`},
		},
		{
			name: "no pods desired is complete",
			d:    daemonSet(func(d *appsv1.DaemonSet) { d.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2} }),
			want: Progress{Complete: true, Message: `daemon set "agent" successfully rolled out`},
		},
		{
			name: "generation not observed waits",
			d:    daemonSet(func(d *appsv1.DaemonSet) { d.Generation = 3 }),
			want: Progress{Message: "Waiting for daemon set spec update to be observed"},
		},
		{
			name:          "minGeneration not observed waits",
			d:             daemonSet(),
			minGeneration: 3,
			want:          Progress{Message: "Waiting for daemon set spec update to be observed"},
		},
		{
			name: "fewer updated pods than desired waits",
			d:    daemonSet(func(d *appsv1.DaemonSet) { d.Status.UpdatedNumberScheduled = 1 }),
			want: Progress{Message: `Waiting for daemon set "agent" rollout to finish: 1 out of 4 new pods have been updated`},
		},
		{
			name: "fewer available pods than desired waits",
			d:    daemonSet(func(d *appsv1.DaemonSet) { d.Status.NumberAvailable = 3 }),
			want: Progress{Message: `Waiting for daemon set "agent" rollout to finish: 3 of 4 updated pods are available`},
		},
		{
			name: "OnDelete with every pod updated and available is complete",
			d:    daemonSet(dsOnDelete),
			want: Progress{Complete: true, Message: `daemon set "agent" successfully rolled out`},
		},
		{
			name: "OnDelete with pods not updated is blocked",
			d:    daemonSet(dsOnDelete, func(d *appsv1.DaemonSet) { d.Status.UpdatedNumberScheduled = 1 }),
			want: Progress{Blocked: v1alpha1.StatusReasonOnDeleteStrategy, Message: onDeleteBlocked + " (1 of 4 pods updated)"},
		},
		{
			name:          "OnDelete with an unobserved generation is blocked",
			d:             daemonSet(dsOnDelete),
			minGeneration: 3,
			want:          Progress{Blocked: v1alpha1.StatusReasonOnDeleteStrategy, Message: onDeleteBlocked + " (4 of 4 pods updated)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(DaemonSetProgress(tt.d, tt.minGeneration)).To(Equal(tt.want))
		})
	}
}

// TestZeroValuesDoNotPanic feeds empty objects to every function: nil pointers inside must not panic.
func TestZeroValuesDoNotPanic(t *testing.T) {
	g := NewWithT(t)
	g.Expect(func() {
		_ = DeploymentProgress(&appsv1.Deployment{}, 0)
		_ = StatefulSetProgress(&appsv1.StatefulSet{}, 0)
		_ = StatefulSetProgress(&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{}},
		}}, 0)
		_ = DaemonSetProgress(&appsv1.DaemonSet{}, 0)
	}).NotTo(Panic())
	g.Expect(DeploymentProgress(&appsv1.Deployment{}, 0).Complete).To(BeFalse(), "nil replicas means one replica is needed")
	g.Expect(StatefulSetProgress(&appsv1.StatefulSet{}, 0).Complete).To(BeFalse(), "observedGeneration 0 is never observed")
	g.Expect(DaemonSetProgress(&appsv1.DaemonSet{}, 0).Complete).To(BeTrue(), "nothing desired, nothing to wait for")
}

func ptrTo[T any](v T) *T { return &v }
