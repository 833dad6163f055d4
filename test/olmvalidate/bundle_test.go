package olmvalidate

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	apierrors "github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	"sigs.k8s.io/yaml"
)

// bundleDir is the committed bundle, as `make bundle` writes it.
const bundleDir = "../../bundle"

// namedValidator is a validator with the name operator-sdk gives it, for the test's output.
type namedValidator struct {
	name string
	interfaces.Validator
}

// defaultValidators are validation.DefaultBundleValidators, the ones `operator-sdk bundle
// validate` always runs (TestDefaultValidatorsAreTheLibrarys checks that the lists agree).
var defaultValidators = []namedValidator{
	{"csv", validation.ClusterServiceVersionValidator},
	{"crd", validation.CustomResourceDefinitionValidator},
	{"bundle", validation.BundleValidator},
}

// suiteValidators are the optional validators labelled suite=operatorframework in operator-sdk
// (internal/cmd/operator-sdk/bundle/validate/optional.go), under operator-sdk's names. The
// deprecated "operatorhub" validator is not in the suite: "operatorhubv2", "capabilities" and
// "categories" together make the same checks.
var suiteValidators = []namedValidator{
	{"operatorhubv2", validation.OperatorHubV2Validator},
	{"capabilities", validation.StandardCapabilitiesValidator},
	{"categories", validation.StandardCategoriesValidator},
	{"alpha-deprecated-apis", validation.AlphaDeprecatedAPIsValidator},
	{"good-practices", validation.GoodPracticesValidator},
}

// finding is one error or warning of one validator.
type finding struct {
	validator string
	manifest  string
	apierrors.Error
}

func (f finding) String() string {
	return fmt.Sprintf("%s: %s: %v", f.validator, f.manifest, f.Error)
}

// validate loads the bundle in dir with operator-framework/api's bundle loader and returns what
// the default and the operatorframework-suite validators report on it, errors and warnings.
//
// It loads the bundle's root rather than its manifests/ as operator-sdk does, so the loader
// also reads metadata/annotations.yaml: the package and the channels, whose names the
// good-practices validator checks.
func validate(t *testing.T, dir string) []finding {
	t.Helper()
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		t.Fatalf("loading the bundle in %s: %v", dir, err)
	}
	if bundle.CSV == nil {
		t.Fatalf("the bundle in %s has no ClusterServiceVersion", dir)
	}
	// As operator-sdk does: every object the bundle exposes (its CRDs, its CSV, every manifest
	// and the bundle itself), each validator picking the types it checks, and the
	// --optional-values map. k8s-version is the oldest Kubernetes the operator supports: an API
	// removed by then is an error rather than a warning.
	objs := bundle.ObjectsToValidate()
	objs = append(objs, map[string]string{"k8s-version": bundle.CSV.Spec.MinKubeVersion})

	var findings []finding
	for _, v := range slices.Concat(defaultValidators, suiteValidators) {
		for _, r := range v.Validate(objs...) {
			for _, e := range slices.Concat(r.Errors, r.Warnings) {
				findings = append(findings, finding{validator: v.name, manifest: r.Name, Error: e})
			}
		}
	}
	return findings
}

// TestBundlePassesOperatorFrameworkValidators is `operator-sdk bundle validate ./bundle
// --select-optional suite=operatorframework`, stricter: a warning fails the test too.
func TestBundlePassesOperatorFrameworkValidators(t *testing.T) {
	findings := validate(t, bundleDir)
	for _, f := range findings {
		t.Errorf("%v", f)
	}
	if len(findings) > 0 {
		t.Log("fix the generator (hack/bundle) or its inputs (config/manifests, config/), then run `make bundle`")
	}
}

// TestDefaultValidatorsAreTheLibrarys fails when a new operator-framework/api changes its
// default bundle validators, so that defaultValidators follows.
func TestDefaultValidatorsAreTheLibrarys(t *testing.T) {
	pointers := func(vs []interfaces.Validator) []uintptr {
		var ps []uintptr
		for _, v := range vs {
			ps = append(ps, reflect.ValueOf(v).Pointer())
		}
		slices.Sort(ps)
		return ps
	}
	var ours []interfaces.Validator
	for _, v := range defaultValidators {
		ours = append(ours, v.Validator)
	}
	if !slices.Equal(pointers(ours), pointers(validation.DefaultBundleValidators)) {
		t.Errorf("defaultValidators (%d) differ from validation.DefaultBundleValidators (%d)",
			len(ours), len(validation.DefaultBundleValidators))
	}
}

// TestValidatorsCatchABrokenBundle breaks a copy of the bundle in one way at a time and expects
// the validator that checks that to report it: the validators are live and see the objects.
func TestValidatorsCatchABrokenBundle(t *testing.T) {
	type want struct {
		validator string
		level     apierrors.Level
		detail    string // a substring of the finding
	}
	cases := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		want    *want // nil: no finding at all
	}{{
		name:    "unchanged copy",
		breakIt: func(*testing.T, string) {},
	}, {
		name:    "no icon",
		breakIt: editCSV(func(csv map[string]any) { delete(spec(csv), "icon") }),
		want:    &want{"operatorhubv2", apierrors.LevelWarn, "csv.Spec.Icon not specified"},
	}, {
		name: "maintainer email",
		breakIt: editCSV(func(csv map[string]any) {
			spec(csv)["maintainers"] = []any{map[string]any{"name": "someone", "email": "not an address"}}
		}),
		want: &want{"operatorhubv2", apierrors.LevelError, "csv.Spec.Maintainers email not an address is invalid"},
	}, {
		name:    "unknown category",
		breakIt: editCSV(func(csv map[string]any) { annotations(csv)["categories"] = "Networking,Service Mesh" }),
		want:    &want{"categories", apierrors.LevelError, `"Service Mesh" is not in the set of standard categories`},
	}, {
		name:    "unknown capability level",
		breakIt: editCSV(func(csv map[string]any) { annotations(csv)["capabilities"] = "Basic" }),
		want:    &want{"capabilities", apierrors.LevelError, `"Basic" is not a valid capabilities level`},
	}, {
		name:    "minKubeVersion not semver",
		breakIt: editCSV(func(csv map[string]any) { spec(csv)["minKubeVersion"] = "1.30" }),
		want:    &want{"csv", apierrors.LevelError, "csv.Spec.MinKubeVersion has an invalid value: 1.30"},
	}, {
		name: "example of an API the CSV does not provide",
		breakIt: editCSV(func(csv map[string]any) {
			annotations(csv)["alm-examples"] = `[{"apiVersion": "mesh.proberedirect.io/v1alpha1", "kind": "Other", "metadata": {"name": "x"}, "spec": {}}]`
		}),
		want: &want{"csv", apierrors.LevelError, "example must have a provided API"},
	}, {
		name:    "no displayName",
		breakIt: editCSV(func(csv map[string]any) { delete(spec(csv), "displayName") }),
		want:    &want{"csv", apierrors.LevelError, "Spec.DisplayName"},
	}, {
		name:    "no alm-examples",
		breakIt: editCSV(func(csv map[string]any) { delete(annotations(csv), "alm-examples") }),
		want:    &want{"csv", apierrors.LevelWarn, "example annotations not found"},
	}, {
		name: "invalid related image",
		breakIt: editCSV(func(csv map[string]any) {
			spec(csv)["relatedImages"] = []any{map[string]any{"name": "manager", "image": "Example.com/UPPER:v1"}}
		}),
		want: &want{"bundle", apierrors.LevelError, "invalid image pullspec"},
	}, {
		name: "ServiceAccount manifest named like the CSV's",
		breakIt: func(t *testing.T, dir string) {
			t.Helper()
			sa := "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: " + serviceAccount(t, dir) + "\n"
			if err := os.WriteFile(filepath.Join(dir, "manifests", "manager_v1_serviceaccount.yaml"), []byte(sa), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want: &want{"bundle", apierrors.LevelError, "invalid service account found in bundle"},
	}, {
		name: "owned CRD without a description",
		breakIt: editCSV(func(csv map[string]any) {
			for _, o := range spec(csv)["customresourcedefinitions"].(map[string]any)["owned"].([]any) {
				delete(o.(map[string]any), "description")
			}
		}),
		want: &want{"good-practices", apierrors.LevelWarn, "has an empty description"},
	}, {
		name: "owned CRD not in the bundle",
		breakIt: func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Remove(filepath.Join(dir, "manifests", "mesh.proberedirect.io_proberedirectpolicies.yaml")); err != nil {
				t.Fatal(err)
			}
		},
		want: &want{"bundle", apierrors.LevelError, "not found in bundle"},
	}, {
		name: "invalid CRD",
		breakIt: editManifest("mesh.proberedirect.io_proberedirectpolicies.yaml", func(crd map[string]any) {
			spec(crd)["scope"] = "Cluster-ish"
		}),
		want: &want{"crd", apierrors.LevelError, "spec.scope"},
	}, {
		name: "container without resource requests",
		breakIt: editCSV(func(csv map[string]any) {
			install := spec(csv)["install"].(map[string]any)["spec"].(map[string]any)
			for _, d := range install["deployments"].([]any) {
				pod := d.(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
				for _, c := range pod["containers"].([]any) {
					delete(c.(map[string]any), "resources")
				}
			}
		}),
		want: &want{"good-practices", apierrors.LevelWarn, "unable to find the resource requests"},
	}, {
		name: "API removed before the supported Kubernetes",
		breakIt: func(t *testing.T, dir string) {
			t.Helper()
			pdb := "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: manager\nspec:\n  minAvailable: 1\n"
			if err := os.WriteFile(filepath.Join(dir, "manifests", "manager_policy_v1beta1_poddisruptionbudget.yaml"), []byte(pdb), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want: &want{"alpha-deprecated-apis", apierrors.LevelError, "deprecated and removed in v1.25"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			if err := os.CopyFS(dir, os.DirFS(bundleDir)); err != nil {
				t.Fatal(err)
			}
			c.breakIt(t, dir)
			findings := validate(t, dir)
			if c.want == nil {
				for _, f := range findings {
					t.Errorf("%v", f)
				}
				return
			}
			for _, f := range findings {
				if f.validator == c.want.validator && f.Level == c.want.level && strings.Contains(f.Error.Error(), c.want.detail) {
					return
				}
			}
			t.Errorf("want %s to report a %s containing %q; the validators reported:", c.want.validator, c.want.level, c.want.detail)
			for _, f := range findings {
				t.Logf("  %v", f)
			}
		})
	}
}

// editCSV rewrites the bundle's ClusterServiceVersion with edit.
func editCSV(edit func(csv map[string]any)) func(t *testing.T, dir string) {
	return editManifest("probe-redirect-operator.clusterserviceversion.yaml", edit)
}

// editManifest rewrites one file of the bundle's manifests/ with edit.
func editManifest(name string, edit func(obj map[string]any)) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		path := filepath.Join(dir, "manifests", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		edit(obj)
		if data, err = yaml.Marshal(obj); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// serviceAccount is the service account of the CSV's first deployment.
func serviceAccount(t *testing.T, dir string) string {
	t.Helper()
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return bundle.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec.ServiceAccountName
}

func spec(obj map[string]any) map[string]any { return obj["spec"].(map[string]any) }

func annotations(obj map[string]any) map[string]any {
	return obj["metadata"].(map[string]any)["annotations"].(map[string]any)
}
