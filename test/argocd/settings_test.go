package argocd

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/proberedirect/probe-redirect-operator/test/argocd/argo"
	corev1 "k8s.io/api/core/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// argoSettings is what the application controller reads from argocd-cm for a comparison
// (controller/state.go getComparisonSettings).
type argoSettings struct {
	appLabelKey    string
	trackingMethod argo.TrackingMethod
	// overrides are the resource overrides, with the status rule Argo CD always adds
	// (resource.compareoptions ignoreResourceStatusField: crd in v2, all in v3).
	overrides map[string]argo.ResourceOverride
}

// defaults are the settings of an Argo CD whose argocd-cm sets nothing, loaded by TestMain: the configuration the
// tests run Argo CD's code in unless a case says otherwise. They differ between major versions (label tracking and
// CRD-only status ignoring in v2, annotation tracking and status ignored everywhere in v3).
var defaults argoSettings

// settingsManager lets Argo CD's own settings manager read cm as argocd-cm, over a fake cluster that also holds the
// argocd-secret the manager insists on.
func settingsManager(ctx context.Context, cm *corev1.ConfigMap) *argo.SettingsManager {
	secret := &corev1.Secret{}
	secret.Name, secret.Namespace = "argocd-secret", cm.Namespace
	secret.Labels = map[string]string{"app.kubernetes.io/part-of": "argocd"}
	return argo.NewSettingsManager(ctx, kubefake.NewSimpleClientset(cm, secret), cm.Namespace)
}

func loadSettings(ctx context.Context, cm *corev1.ConfigMap) (argoSettings, error) {
	mgr := settingsManager(ctx, cm)
	var s argoSettings
	var err error
	if s.appLabelKey, err = mgr.GetAppInstanceLabelKey(); err != nil {
		return s, err
	}
	if s.trackingMethod, err = argo.GetTrackingMethod(mgr); err != nil {
		return s, err
	}
	if s.overrides, err = mgr.GetResourceOverrides(); err != nil {
		return s, err
	}
	return s, nil
}

func loadDefaults(ctx context.Context) error {
	cm := &corev1.ConfigMap{}
	cm.Name, cm.Namespace = "argocd-cm", "argocd"
	cm.Labels = map[string]string{"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"}
	s, err := loadSettings(ctx, cm)
	if err != nil {
		return fmt.Errorf("Argo CD's settings from an empty argocd-cm: %w", err)
	}
	defaults = s
	return nil
}

// TestDefaultSettings pins the defaults the other tests run with, so that a version change that moves them is seen.
func TestDefaultSettings(t *testing.T) {
	type want struct {
		trackingMethod   argo.TrackingMethod
		statusIgnoredFor string
	}
	w, ok := map[string]want{
		argoCDv2: {"label", "apiextensions.k8s.io/CustomResourceDefinition"},
		argoCDv3: {"annotation", "*/*"},
	}[argo.Module]
	if !ok {
		t.Fatalf("no expected defaults for %s", argo.Module)
	}
	if defaults.appLabelKey != "app.kubernetes.io/instance" {
		t.Errorf("default application.instanceLabelKey = %q", defaults.appLabelKey)
	}
	if defaults.trackingMethod != w.trackingMethod {
		t.Errorf("default tracking method = %q, want %q", defaults.trackingMethod, w.trackingMethod)
	}
	var statusIgnoredFor []string
	for gk, o := range defaults.overrides {
		if slices.Contains(o.IgnoreDifferences.JSONPointers, "/status") {
			statusIgnoredFor = append(statusIgnoredFor, gk)
		}
	}
	if len(statusIgnoredFor) != 1 || statusIgnoredFor[0] != w.statusIgnoredFor {
		t.Errorf("default resource overrides ignore /status for %v, want [%s]", statusIgnoredFor, w.statusIgnoredFor)
	}
}
