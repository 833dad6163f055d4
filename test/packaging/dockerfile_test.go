package packaging

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// No Docker engine runs on the project's machines, so this test checks the Dockerfile's structure
// and builds the binary exactly the way its builder stage does.
func TestDockerfile(t *testing.T) {
	g := NewWithT(t)
	root := testenv.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	g.Expect(err).NotTo(HaveOccurred())
	var froms, runs, users, entrypoints, copies []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "FROM "):
			froms = append(froms, line)
		case strings.HasPrefix(line, "RUN "):
			runs = append(runs, line)
		case strings.HasPrefix(line, "USER "):
			users = append(users, line)
		case strings.HasPrefix(line, "ENTRYPOINT "):
			entrypoints = append(entrypoints, line)
		case strings.HasPrefix(line, "COPY "):
			copies = append(copies, line)
		}
	}
	g.Expect(froms).To(HaveLen(2), "multi-stage: a builder and a runtime image")
	g.Expect(froms[0]).To(MatchRegexp(`^FROM golang:1\.26\.\d+ AS builder$`), "builder pinned to the Go the module needs")
	g.Expect(froms[1]).To(MatchRegexp(`^FROM gcr\.io/distroless/static-debian\d+:nonroot$`), "distroless, static, non-root, pinned distribution")
	g.Expect(users).To(Equal([]string{"USER 65532:65532"}))
	g.Expect(entrypoints).To(Equal([]string{`ENTRYPOINT ["/manager"]`}))
	g.Expect(copies).To(ContainElement("COPY --from=builder /workspace/manager ."))
	g.Expect(copies).To(ContainElement("COPY --from=builder /workspace/probe-redirect ."), "the image ships the analyze CLI")
	g.Expect(runs).To(ContainElement(MatchRegexp(`^RUN CGO_ENABLED=0 GOOS=\S+ GOARCH=\S+ go build .* -o probe-redirect \./cmd/probe-redirect$`)))
	for _, src := range []string{"main.go", "api/", "controllers/", "internal/", "cmd/"} {
		g.Expect(copies).To(ContainElement(HavePrefix("COPY "+src)), "the builder copies %s", src)
	}

	build := regexp.MustCompile(`^RUN (CGO_ENABLED=0) GOOS=\S+ GOARCH=\S+ go build (.*) -o manager \.$`).FindStringSubmatch(runs[len(runs)-1])
	g.Expect(build).NotTo(BeNil(), "the last RUN builds the manager statically: %s", runs[len(runs)-1])
	flags := shellFields(build[2])
	out := filepath.Join(t.TempDir(), "manager")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, ".")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), build[1], "GOOS=linux")
	output, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(output))

	binary, err := elf.Open(out)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = binary.Close() }()
	for _, p := range binary.Progs {
		g.Expect(p.Type).NotTo(Equal(elf.PT_INTERP), "a static binary has no dynamic loader, so it runs on distroless/static")
	}
	libs, err := binary.ImportedLibraries()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(libs).To(BeEmpty())
}

// shellFields splits a command line on spaces outside double quotes, dropping the quotes.
func shellFields(line string) []string {
	var fields []string
	var current strings.Builder
	quoted := false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if current.Len() > 0 {
				fields = append(fields, current.String())
				current.Reset()
			}
		default:
			current.WriteRune(r)
		}
	}
	if current.Len() > 0 {
		fields = append(fields, current.String())
	}
	return fields
}
