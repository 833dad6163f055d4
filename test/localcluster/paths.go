package localcluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ModulePath is this repository's Go module.
const ModulePath = "github.com/proberedirect/probe-redirect-operator"

// DefaultKwokVersion is used when bin/kwok is not a symlink to kwok-<version>
// (hack/tools.mk builds it as such a symlink).
const DefaultKwokVersion = "v0.8.0"

// RepoRoot finds the repository: the nearest folder at or above the working
// directory whose go.mod declares ModulePath, else the folder this source
// file was compiled from.
func RepoRoot() (string, error) {
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if isRepoRoot(dir) {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isRepoRoot(dir) {
			return dir, nil
		}
	}
	return "", errors.New("localcluster: cannot find the repository root (a go.mod declaring " + ModulePath +
		"); run from inside the repository or set Options.RepoRoot")
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == ModulePath
		}
	}
	return false
}

// DefaultDir is the state folder of cluster name: <repo>/.local/clusters/<name>.
func DefaultDir(repoRoot, name string) string {
	return filepath.Join(repoRoot, ".local", "clusters", name)
}

// MissingBinaryError reports a control-plane binary that is not built.
type MissingBinaryError struct {
	Binary, BinDir string
}

func (e *MissingBinaryError) Error() string {
	target := "control-plane-bins"
	if e.Binary == IstioInjector {
		target = "istio-injector"
	}
	return fmt.Sprintf("localcluster: %s not found in %s: run `make %s` first", e.Binary, e.BinDir, target)
}

// binaries are the executables Start needs in BinDir.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// CheckBinaries fails with a MissingBinaryError naming the first binary
// that binDir lacks.
func CheckBinaries(binDir string) error {
	for _, b := range binaries {
		if err := checkBinary(binDir, b); err != nil {
			return err
		}
	}
	return nil
}

func checkBinary(binDir, name string) error {
	st, err := os.Stat(filepath.Join(binDir, name))
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return &MissingBinaryError{Binary: name, BinDir: binDir}
	}
	return nil
}

// kwokVersion reads the version from the bin/kwok -> kwok-<version> symlink.
func kwokVersion(binDir string) string {
	if target, err := os.Readlink(filepath.Join(binDir, "kwok")); err == nil {
		if v, ok := strings.CutPrefix(filepath.Base(target), "kwok-"); ok && strings.HasPrefix(v, "v") {
			return v
		}
	}
	return DefaultKwokVersion
}

// goModDir runs `go mod download -json module@version` outside any module and
// returns the module's folder in the module cache.
func goModDir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("localcluster: go mod download %s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("localcluster: go mod download %s@%s: %w: %s", module, version, err, stderr.String())
	}
	if info.Dir == "" {
		return "", fmt.Errorf("localcluster: go mod download %s@%s gave no Dir", module, version)
	}
	return info.Dir, nil
}

// kwokStageFiles are the stock stages used, relative to kustomize/stage.
var kwokStageFiles = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat/node-heartbeat.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

// writeKwokConfig concatenates the stock stages and podStages into one
// multi-document file.
func writeKwokConfig(path, stockStagesDir, podStages string) error {
	var b strings.Builder
	files := make([]string, 0, len(kwokStageFiles)+1)
	for _, f := range kwokStageFiles {
		files = append(files, filepath.Join(stockStagesDir, f))
	}
	files = append(files, podStages)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("localcluster: kwok stages: %w", err)
		}
		fmt.Fprintf(&b, "# ---- from %s\n---\n%s\n", f, strings.TrimSpace(string(data)))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// istioCRDsFile locates kubernetes/customresourcedefinitions.gen.yaml in the
// istio.io/api module required by the repository.
func istioCRDsFile(repoRoot string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
	cmd.Dir = repoRoot
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("localcluster: locating the istio.io/api module: %w: %s", err, stderr.String())
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("localcluster: Istio CRDs: %w", err)
	}
	return path, nil
}
