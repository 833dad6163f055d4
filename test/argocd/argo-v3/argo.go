// Package argo is the only package through which test/argocd imports Argo CD itself. This copy
// wraps github.com/argoproj/argo-cd/v3; ../argo-v2 declares the same names over argo-cd/v2.
// test/argocd's go.mod points the module path at this directory, argocd-v2.14.mod at ../argo-v2,
// so one set of tests runs against either major version. gitops-engine is imported directly by
// the tests: its module path is the same in both.
package argo

import (
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argoutil "github.com/argoproj/argo-cd/v3/util/argo"
	argodiff "github.com/argoproj/argo-cd/v3/util/argo/diff"
	"github.com/argoproj/argo-cd/v3/util/argo/normalizers"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

// Module is the Argo CD module these names come from.
const Module = "github.com/argoproj/argo-cd/v3"

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
// settings (controller/state.go: settingsMgr.GetTrackingMethod; "annotation" when argocd-cm
// leaves application.resourceTrackingMethod unset).
func GetTrackingMethod(mgr *SettingsManager) (TrackingMethod, error) {
	tm, err := mgr.GetTrackingMethod()
	return TrackingMethod(tm), err
}
