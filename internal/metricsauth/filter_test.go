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

package metricsauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/proberedirect/probe-redirect-operator/internal/metricsauth"
)

// reviews answers TokenReviews from users (token to user name) and SubjectAccessReviews from
// allowed (user name to allowed), failing when err is set, and counts the calls.
type reviews struct {
	users             map[string]string
	allowed           map[string]bool
	err               error
	tokenCalls        int
	accessCalls       int
	lastAccess        *authorizationv1.SubjectAccessReviewSpec
	tokenFailuresLeft int
}

func (r *reviews) tokenReviews() metricsauth.TokenReviews          { return tokenFunc(r.reviewToken) }
func (r *reviews) accessReviews() metricsauth.SubjectAccessReviews { return accessFunc(r.reviewAccess) }

func (r *reviews) reviewToken(_ context.Context, tr *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	r.tokenCalls++
	if r.tokenFailuresLeft > 0 {
		r.tokenFailuresLeft--
		return nil, apierrors.NewInternalError(errors.New("etcd leader changed"))
	}
	if r.err != nil {
		return nil, r.err
	}
	out := tr.DeepCopy()
	if name, ok := r.users[tr.Spec.Token]; ok {
		out.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: name, Groups: []string{"system:authenticated"}}}
	}
	return out, nil
}

func (r *reviews) reviewAccess(_ context.Context, sar *authorizationv1.SubjectAccessReview, _ metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	r.accessCalls++
	r.lastAccess = sar.Spec.DeepCopy()
	out := sar.DeepCopy()
	out.Status.Allowed = r.allowed[sar.Spec.User]
	return out, nil
}

type tokenFunc func(context.Context, *authenticationv1.TokenReview, metav1.CreateOptions) (*authenticationv1.TokenReview, error)

func (f tokenFunc) Create(ctx context.Context, tr *authenticationv1.TokenReview, o metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	return f(ctx, tr, o)
}

type accessFunc func(context.Context, *authorizationv1.SubjectAccessReview, metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error)

func (f accessFunc) Create(ctx context.Context, sar *authorizationv1.SubjectAccessReview, o metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	return f(ctx, sar, o)
}

func serve(t *testing.T, r *reviews) func(header string) int {
	t.Helper()
	h, err := metricsauth.NewFilter(r.tokenReviews(), r.accessReviews())(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "" {
			http.Error(w, "the handler saw the token", http.StatusTeapot)
			return
		}
		_, _ = w.Write([]byte("metrics"))
	}))
	if err != nil {
		t.Fatal(err)
	}
	return func(header string) int {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
}

// TestFilterAnswers checks every answer of the filter: 401 without a bearer token or with one the
// API server does not accept, 403 for a user not allowed to get /metrics, 200 for one allowed
// (whose token the metrics handler does not see), and 500 when the API server cannot review.
func TestFilterAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		err          error
		want         int
	}{
		{name: "no header", want: http.StatusUnauthorized},
		{name: "not bearer", header: "Basic dXNlcjpwYXNz", want: http.StatusUnauthorized},
		{name: "empty bearer", header: "Bearer ", want: http.StatusUnauthorized},
		{name: "unknown token", header: "Bearer nope", want: http.StatusUnauthorized},
		{name: "not allowed", header: "Bearer t-eve", want: http.StatusForbidden},
		{name: "allowed", header: "Bearer t-prometheus", want: http.StatusOK},
		// The header is read as k8s.io/apiserver's bearer token authenticator reads it.
		{name: "lower case", header: "bearer t-prometheus", want: http.StatusOK},
		{name: "upper case", header: "BEARER t-prometheus", want: http.StatusOK},
		{name: "leading spaces", header: "  Bearer t-prometheus", want: http.StatusOK},
		{name: "words after the token", header: "Bearer t-prometheus extra", want: http.StatusOK},
		{name: "two spaces", header: "Bearer  t-prometheus", want: http.StatusUnauthorized},
		{name: "review fails", header: "Bearer t-prometheus", err: errors.New("etcd is down"), want: http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reviews{users: map[string]string{"t-eve": "eve", "t-prometheus": "system:serviceaccount:monitoring:prometheus"},
				allowed: map[string]bool{"system:serviceaccount:monitoring:prometheus": true}, err: tc.err}
			NewWithT(t).Expect(serve(t, r)(tc.header)).To(Equal(tc.want))
		})
	}
}

// TestFilterAsksForTheRequestsPathAndVerb checks the SubjectAccessReview: the reviewed user with
// its groups, the request's path and its method in lower case, as a non-resource URL.
func TestFilterAsksForTheRequestsPathAndVerb(t *testing.T) {
	g := NewWithT(t)
	r := &reviews{users: map[string]string{"t": "prometheus"}, allowed: map[string]bool{"prometheus": true}}
	g.Expect(serve(t, r)("Bearer t")).To(Equal(http.StatusOK))
	g.Expect(r.lastAccess).To(Equal(&authorizationv1.SubjectAccessReviewSpec{User: "prometheus", Groups: []string{"system:authenticated"},
		Extra: map[string]authorizationv1.ExtraValue{}, NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}))
}

// TestFilterCachesAnswers checks that a scrape every few seconds does not review every time: a
// token's and a decision's answers are reused, for valid and invalid tokens alike.
func TestFilterCachesAnswers(t *testing.T) {
	g := NewWithT(t)
	r := &reviews{users: map[string]string{"t": "prometheus", "t-eve": "eve"}, allowed: map[string]bool{"prometheus": true}}
	get := serve(t, r)
	for range 5 {
		g.Expect(get("Bearer t")).To(Equal(http.StatusOK))
		g.Expect(get("Bearer t-eve")).To(Equal(http.StatusForbidden))
		g.Expect(get("Bearer bogus")).To(Equal(http.StatusUnauthorized))
	}
	g.Expect(r.tokenCalls).To(Equal(3))
	g.Expect(r.accessCalls).To(Equal(2))
}

// TestFilterRetriesAFailedReview checks that a review the API server fails to answer for a
// passing reason is tried again before the request fails, and that one it refuses is not.
func TestFilterRetriesAFailedReview(t *testing.T) {
	g := NewWithT(t)
	r := &reviews{users: map[string]string{"t": "prometheus"}, allowed: map[string]bool{"prometheus": true}, tokenFailuresLeft: 2}
	g.Expect(serve(t, r)("Bearer t")).To(Equal(http.StatusOK))
	g.Expect(r.tokenCalls).To(Equal(3))

	r = &reviews{err: apierrors.NewForbidden(schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}, "", errors.New("RBAC"))}
	g.Expect(serve(t, r)("Bearer t")).To(Equal(http.StatusInternalServerError))
	g.Expect(r.tokenCalls).To(Equal(1))
}
