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

// Package metricsauth puts the metrics endpoint behind Kubernetes authentication and
// authorization: a request's bearer token is checked with a TokenReview, and the user it names
// with a SubjectAccessReview for the request's non-resource path and verb, which the
// metrics-reader ClusterRole grants.
//
// It does what controller-runtime's filters.WithAuthenticationAndAuthorization does (pkg/metrics/
// filters, v0.24): the bearer token read as k8s.io/apiserver reads it (pkg/authentication/request/
// bearertoken, v0.36) and removed from the request once accepted, 401 without a valid token, 403
// when not allowed, 500 when a review fails, the same cache lifetimes, retries of transient
// failures only, within one 10 s deadline. It calls the two review APIs through client-go's typed
// clients instead of k8s.io/apiserver's delegating authenticator and authorizer, which bring CEL,
// OpenTelemetry and gRPC along, a third of the operator's binary and of its resident memory. One
// difference: a token the API server does not accept is answered 401, where controller-runtime's
// filter answers 500 (k8s.io/apiserver's bearer token authenticator reports such a token as an
// error, and the filter answers every error with a 500).
package metricsauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Cache lifetimes and the review timeout, those of controller-runtime's filter.
const (
	TokenCacheTTL = time.Minute
	AllowCacheTTL = 5 * time.Minute
	DenyCacheTTL  = 30 * time.Second
	ReviewTimeout = 10 * time.Second
	cacheEntries  = 1024
)

// retry is how a review that fails transiently is tried again: k8s.io/apiserver's
// DefaultAuthWebhookRetryBackoff (pkg/server/options/authentication.go), as controller-runtime's
// filter copies it.
var retry = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

// TokenReviews creates TokenReviews: client-go's typed TokenReviewInterface.
type TokenReviews interface {
	Create(ctx context.Context, review *authenticationv1.TokenReview, opts metav1.CreateOptions) (*authenticationv1.TokenReview, error)
}

// SubjectAccessReviews creates SubjectAccessReviews: client-go's typed SubjectAccessReviewInterface.
type SubjectAccessReviews interface {
	Create(ctx context.Context, review *authorizationv1.SubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error)
}

// FilterProvider is a metricsserver.Options.FilterProvider: it reviews through the API server
// that config and httpClient reach. Its error says that a client could not be made.
func FilterProvider(config *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authenticationclient.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, err
	}
	authz, err := authorizationclient.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, err
	}
	return NewFilter(authn.TokenReviews(), authz.SubjectAccessReviews()), nil
}

// NewFilter returns a metrics filter that lets a request through only when its bearer token is
// valid (TokenReview) and its user may use the request's verb (the HTTP method, lower case) on
// its path (SubjectAccessReview of a non-resource URL). Answers are cached: a token's for
// TokenCacheTTL, an allowed user's for AllowCacheTTL, a denied one's for DenyCacheTTL.
func NewFilter(tokens TokenReviews, access SubjectAccessReviews) metricsserver.Filter {
	a := &authorizer{tokens: tokens, access: access,
		users: utilcache.NewLRUExpireCache(cacheEntries), decisions: utilcache.NewLRUExpireCache(cacheEntries)}
	return func(log logr.Logger, handler http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			user, ok, err := a.authenticate(req)
			if ok {
				// As k8s.io/apiserver's bearer token authenticator: the handler never sees it.
				req.Header.Del("Authorization")
			}
			if err != nil {
				log.Error(err, "Authentication failed")
				http.Error(w, "Authentication failed", http.StatusInternalServerError)
				return
			}
			if !ok {
				log.V(4).Info("Authentication failed")
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			verb := strings.ToLower(req.Method)
			allowed, reason, err := a.authorize(req.Context(), user, verb, req.URL.Path)
			if err != nil {
				msg := fmt.Sprintf("Authorization for user %s failed", user.Username)
				log.Error(err, msg)
				http.Error(w, msg, http.StatusInternalServerError)
				return
			}
			if !allowed {
				msg := fmt.Sprintf("Authorization denied for user %s", user.Username)
				log.V(4).Info(msg, "reason", reason)
				http.Error(w, msg, http.StatusForbidden)
				return
			}
			handler.ServeHTTP(w, req)
		}), nil
	}
}

type authorizer struct {
	tokens TokenReviews
	access SubjectAccessReviews
	// users maps a token's SHA-256 to the authenticationv1.UserInfo it names, or to nil for a
	// token that is not valid; decisions maps a user, verb and path to a decision.
	users, decisions *utilcache.LRUExpireCache
}

// decision is a cached SubjectAccessReview answer.
type decision struct {
	allowed bool
	reason  string
}

// bearerToken reads the request's bearer token as k8s.io/apiserver does (pkg/authentication/
// request/bearertoken, AuthenticateRequest): "Bearer" in any case, one space, the token, and
// anything after a further space ignored; "" when there is none.
func bearerToken(req *http.Request) string {
	parts := strings.SplitN(strings.TrimSpace(req.Header.Get("Authorization")), " ", 3)
	if len(parts) < 2 || !strings.EqualFold(parts[0], "bearer") {
		return ""
	}
	return parts[1]
}

// authenticate reviews the request's bearer token; ok is false without one or for one that is not
// valid.
func (a *authorizer) authenticate(req *http.Request) (user authenticationv1.UserInfo, ok bool, err error) {
	token := bearerToken(req)
	if token == "" {
		return user, false, nil
	}
	key := sha256.Sum256([]byte(token))
	if cached, hit := a.users.Get(key); hit {
		if cached == nil {
			return user, false, nil
		}
		return cached.(authenticationv1.UserInfo), true, nil
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	var answer *authenticationv1.TokenReview
	err = retried(req.Context(), func(ctx context.Context) (err error) {
		answer, err = a.tokens.Create(ctx, review, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return user, false, fmt.Errorf("reviewing the token: %w", err)
	}
	if !answer.Status.Authenticated || answer.Status.Error != "" {
		a.users.Add(key, nil, TokenCacheTTL)
		return user, false, nil
	}
	a.users.Add(key, answer.Status.User, TokenCacheTTL)
	return answer.Status.User, true, nil
}

// authorize asks whether user may use verb on the non-resource path.
func (a *authorizer) authorize(ctx context.Context, user authenticationv1.UserInfo, verb, path string) (allowed bool, reason string, err error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}}
	// Keyed by the whole review, as k8s.io/apiserver's cached authorizer keys its answers.
	spec, err := json.Marshal(review.Spec)
	if err != nil {
		return false, "", err
	}
	key := string(spec)
	if cached, hit := a.decisions.Get(key); hit {
		d := cached.(decision)
		return d.allowed, d.reason, nil
	}
	var answer *authorizationv1.SubjectAccessReview
	err = retried(ctx, func(ctx context.Context) (err error) {
		answer, err = a.access.Create(ctx, review, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return false, "", fmt.Errorf("reviewing access to %s %s: %w", verb, path, err)
	}
	d := decision{allowed: answer.Status.Allowed && !answer.Status.Denied, reason: answer.Status.Reason}
	ttl := DenyCacheTTL
	if d.allowed {
		ttl = AllowCacheTTL
	}
	a.decisions.Add(key, d, ttl)
	return d.allowed, d.reason, nil
}

// retried calls review until it succeeds, fails for good, or retry runs out, all within
// ReviewTimeout.
func retried(ctx context.Context, review func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, ReviewTimeout)
	defer cancel()
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, retry, func(ctx context.Context) (bool, error) {
		last = review(ctx)
		if last != nil && !transient(last) {
			return false, last
		}
		return last == nil, nil
	})
	if last != nil {
		return last
	}
	return err
}

// transient reports whether a review's error may pass if tried again: those k8s.io/apiserver's
// webhook.DefaultShouldRetry retries (pkg/util/webhook/webhook.go, v0.36: a connection reset or an
// HTTP/2 connection lost, the API server's internal errors, timeouts and throttling, any answer
// with a Retry-After), plus a connection refused or cut short and a 503, which pass as often.
func transient(err error) bool {
	if _, delay := apierrors.SuggestsClientDelay(err); delay {
		return true
	}
	return apierrors.IsInternalError(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsHTTP2ConnectionLost(err) || utilnet.IsConnectionRefused(err) || utilnet.IsProbableEOF(err)
}
