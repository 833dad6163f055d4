// Package argo is the only package through which test/argocd imports Argo CD itself. This copy
// wraps github.com/argoproj/argo-cd/v2; ../argo-v3 declares the same names over argo-cd/v3.
// test/argocd's argocd-v2.14.mod points the module path at this directory, go.mod at ../argo-v3,
// so one set of tests runs against either major version. gitops-engine is imported directly by
// the tests: its module path is the same in both.
package argo

import (
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	argoutil "github.com/argoproj/argo-cd/v2/util/argo"
	argodiff "github.com/argoproj/argo-cd/v2/util/argo/diff"
	"github.com/argoproj/argo-cd/v2/util/argo/normalizers"
	"github.com/argoproj/argo-cd/v2/util/lua"
	"github.com/argoproj/argo-cd/v2/util/settings"
)

// Module is the Argo CD module these names come from.
const Module = "github.com/argoproj/argo-cd/v2"

type (
	Application               = v1alpha1.Application
	ResourceOverride          = v1alpha1.ResourceOverride
	ResourceIgnoreDifferences = v1alpha1.ResourceIgnoreDifferences
	SyncOptions               = v1alpha1.SyncOptions
	TrackingMethod            = v1alpha1.TrackingMethod
	LuaVM                     = lua.VM
	ResourceHealthOverrides   = lua.ResourceHealthOverrides
	SettingsManager           = settings.SettingsManager
	DiffConfig                = argodiff.DiffConfig
	IgnoreNormalizerOpts      = normalizers.IgnoreNormalizerOpts
)

var (
	GetConfigMapKey      = lua.GetConfigMapKey
	NewSettingsManager   = settings.NewSettingsManager
	NewResourceTracking  = argoutil.NewResourceTracking
	NewDiffConfigBuilder = argodiff.NewDiffConfigBuilder
	StateDiff            = argodiff.StateDiff
	Normalize            = argodiff.Normalize
)

// GetTrackingMethod is the resource tracking method the application controller uses with these
// settings (controller/state.go: argo.GetTrackingMethod; "label" when argocd-cm leaves
// application.resourceTrackingMethod unset).
func GetTrackingMethod(mgr *SettingsManager) (TrackingMethod, error) {
	return argoutil.GetTrackingMethod(mgr), nil
}
