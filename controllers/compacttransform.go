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

package controllers

import (
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/proberedirect/probe-redirect-operator/internal/compact"
)

// SlimEvent is the cache transform's first step for Events: it keeps what the Unhealthy report
// reads (internal/unhealthy's Summarize, LastSeen, Count and ContainerOf; plan's match of an
// Event to its pod by involvedObject name and UID): the identity (name, namespace, UID,
// resourceVersion, creation timestamp), the reason, message and type, the whole involvedObject,
// the count, the first and last timestamps, the eventTime and the series. It drops the source,
// the reporting controller and instance, the action, the related object, and the metadata the
// report does not read. Any other object passes unchanged.
func SlimEvent(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	return &corev1.Event{
		TypeMeta:       e.TypeMeta,
		ObjectMeta:     slimMeta(&e.ObjectMeta),
		InvolvedObject: e.InvolvedObject,
		Reason:         e.Reason, Message: e.Message, Type: e.Type, Count: e.Count,
		FirstTimestamp: e.FirstTimestamp, LastTimestamp: e.LastTimestamp, EventTime: e.EventTime, Series: e.Series,
	}, nil
}

// Compacted returns the cache transform that slims an object with slim (SlimPod, SlimWorkload or
// SlimEvent) and then holds it as a compact.Object, which the cache's Get and List decode back
// into the slim typed object. An object of a kind compact does not hold, or one compacted already
// (a transform may see an object twice), passes as slim leaves it.
//
// With client-go's cache mutation detector on (KUBE_CACHE_MUTATION_DETECTOR=true, a debugging
// aid), objects are only slimmed: the detector compares each cached object with its
// DeepCopyObject, which for a compact.Object is the typed object it holds, and would report
// every one as mutated (client-go tools/cache/mutation_detector.go).
func Compacted(slim toolscache.TransformFunc) toolscache.TransformFunc {
	if on, _ := strconv.ParseBool(os.Getenv("KUBE_CACHE_MUTATION_DETECTOR")); on {
		return slim
	}
	return func(obj any) (any, error) {
		out, err := slim(obj)
		if err != nil {
			return nil, err
		}
		if typed, ok := out.(runtime.Object); ok && compact.Holds(typed) {
			return compact.Pack(typed)
		}
		return out, nil
	}
}

// typedObject returns the typed object an informer handed to an event handler: a compact.Object
// decoded, any other object as it is.
func typedObject(obj runtime.Object) runtime.Object {
	if c, ok := obj.(*compact.Object); ok {
		if typed, err := c.Unpack(); err == nil {
			return typed
		}
	}
	return obj
}
