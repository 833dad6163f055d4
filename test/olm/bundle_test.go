// Package olm checks the OLM bundle (bundle/, bundle.Dockerfile) that `make bundle` generates
// with hack/bundle: that it is up to date, that OLM's real ClusterServiceVersion schema and our
// CRD accept it, and that it passes the checks of operator-sdk's scorecard and this project's
// own. operator-framework/api's bundle validators run in the module test/olmvalidate.
package olm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

const (
	packageName = "probe-redirect-operator"
	csvFile     = packageName + ".clusterserviceversion.yaml"
)

// csv is the part of a ClusterServiceVersion these tests read (operator-framework/api's types
// are not available as a module here).
type csv struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		DisplayName    string   `json:"displayName"`
		Description    string   `json:"description"`
		Version        string   `json:"version"`
		Maturity       string   `json:"maturity"`
		MinKubeVersion string   `json:"minKubeVersion"`
		Keywords       []string `json:"keywords"`
		Maintainers    []struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"maintainers"`
		Provider link   `json:"provider"`
		Links    []link `json:"links"`
		Icon     []struct {
			Data      string `json:"base64data"`
			MediaType string `json:"mediatype"`
		} `json:"icon"`
		InstallModes []struct {
			Type      string `json:"type"`
			Supported bool   `json:"supported"`
		} `json:"installModes"`
		Install struct {
			Strategy string `json:"strategy"`
			Spec     struct {
				Deployments []struct {
					Name  string                `json:"name"`
					Label map[string]string     `json:"label"`
					Spec  appsv1.DeploymentSpec `json:"spec"`
				} `json:"deployments"`
				Permissions        []permission `json:"permissions"`
				ClusterPermissions []permission `json:"clusterPermissions"`
			} `json:"spec"`
		} `json:"install"`
		CustomResourceDefinitions struct {
			Owned []ownedCRD `json:"owned"`
		} `json:"customresourcedefinitions"`
		RelatedImages []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"relatedImages"`
	} `json:"spec"`
}

type link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type permission struct {
	ServiceAccountName string              `json:"serviceAccountName"`
	Rules              []rbacv1.PolicyRule `json:"rules"`
}

type ownedCRD struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Kind        string `json:"kind"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
	Resources   []struct {
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		Version string `json:"version"`
	} `json:"resources"`
	SpecDescriptors   []descriptor `json:"specDescriptors"`
	StatusDescriptors []descriptor `json:"statusDescriptors"`
}

type descriptor struct {
	Path         string   `json:"path"`
	DisplayName  string   `json:"displayName"`
	Description  string   `json:"description"`
	XDescriptors []string `json:"x-descriptors"`
}

func bundleDir() string { return filepath.Join(testenv.RepoRoot(), "bundle") }

// readCSV reads the committed bundle's ClusterServiceVersion.
func readCSV(t *testing.T) (*csv, *unstructured.Unstructured) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundleDir(), "manifests", csvFile))
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "run `make bundle`")
	typed := &csv{}
	NewWithT(t).Expect(yaml.Unmarshal(data, typed)).To(Succeed())
	u := &unstructured.Unstructured{}
	NewWithT(t).Expect(yaml.Unmarshal(data, &u.Object)).To(Succeed())
	return typed, u
}

// readManifests reads every object in bundle/manifests, by file name.
func readManifests(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	g := NewWithT(t)
	entries, err := os.ReadDir(filepath.Join(bundleDir(), "manifests"))
	g.Expect(err).NotTo(HaveOccurred())
	objs := map[string]*unstructured.Unstructured{}
	for _, e := range entries {
		g.Expect(e.IsDir()).To(BeFalse(), "manifests/ is flat")
		data, err := os.ReadFile(filepath.Join(bundleDir(), "manifests", e.Name()))
		g.Expect(err).NotTo(HaveOccurred())
		docs := decodeAll(t, data)
		g.Expect(docs).To(HaveLen(1), "%s holds one object", e.Name())
		objs[e.Name()] = docs[0]
	}
	return objs
}

func decodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := decoder.Decode(&u.Object); err != nil {
			NewWithT(t).Expect(errors.Is(err, io.EOF)).To(BeTrue(), "decoding: %v", err)
			return objs
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// almExamples parses the CSV's alm-examples annotation.
func almExamples(t *testing.T, c *csv) []*unstructured.Unstructured {
	t.Helper()
	raw, ok := c.Metadata.Annotations["alm-examples"]
	NewWithT(t).Expect(ok).To(BeTrue(), "the CSV has an alm-examples annotation")
	var list []map[string]any
	NewWithT(t).Expect(yaml.Unmarshal([]byte(raw), &list)).To(Succeed(), "alm-examples is a JSON array of objects")
	objs := make([]*unstructured.Unstructured, 0, len(list))
	for _, m := range list {
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// readTree returns every file under dir by slash-separated relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return files
}

// firstDifference describes where two texts first differ, for a readable failure.
func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	line := func(lines []string, i int) string {
		if i < len(lines) {
			return fmt.Sprintf("%q", lines[i])
		}
		return "(end of file)"
	}
	for i := 0; i < len(w) || i < len(g); i++ {
		if wl, gl := line(w, i), line(g, i); wl != gl {
			return fmt.Sprintf("line %d:\n  generated: %s\n  committed: %s", i+1, wl, gl)
		}
	}
	return "no difference"
}

// TestBundleIsUpToDate regenerates the bundle, with the version and image of the committed
// CSV, and requires the committed bundle/ and bundle.Dockerfile to be identical.
func TestBundleIsUpToDate(t *testing.T) {
	g := NewWithT(t)
	kustomize := os.Getenv("KUSTOMIZE")
	if kustomize == "" {
		kustomize = filepath.Join(testenv.RepoRoot(), "bin", "kustomize")
	}
	kustomize, err := filepath.Abs(kustomize)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = os.Stat(kustomize)
	g.Expect(err).NotTo(HaveOccurred(), "kustomize is built by `make kustomize` (make test does it)")

	committed, _ := readCSV(t)
	var image string
	for _, ri := range committed.Spec.RelatedImages {
		if ri.Name == "manager" {
			image = ri.Image
		}
	}
	g.Expect(committed.Spec.Version).NotTo(BeEmpty())
	g.Expect(image).NotTo(BeEmpty(), "the committed CSV names the manager image in relatedImages")

	out := filepath.Join(t.TempDir(), "bundle")
	cmd := exec.Command("go", "run", "./hack/bundle", "--kustomize", kustomize,
		"--version", committed.Spec.Version, "--image", image, "--out", out)
	cmd.Dir = testenv.RepoRoot()
	output, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(output))

	const hint = "the committed bundle is stale: run `make bundle` and commit bundle/ and bundle.Dockerfile"
	want, got := readTree(t, out), readTree(t, bundleDir())
	want["../bundle.Dockerfile"] = mustRead(t, filepath.Join(filepath.Dir(out), "bundle.Dockerfile"))
	got["../bundle.Dockerfile"] = mustRead(t, filepath.Join(testenv.RepoRoot(), "bundle.Dockerfile"))
	for name, w := range want {
		c, ok := got[name]
		g.Expect(ok).To(BeTrue(), "%s: bundle/%s is missing", hint, name)
		g.Expect(bytes.Equal(w, c)).To(BeTrue(), "%s: bundle/%s differs at %s", hint, name, firstDifference(w, c))
	}
	for name := range got {
		g.Expect(want).To(HaveKey(name), "%s: bundle/%s is no longer generated", hint, name)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return data
}
