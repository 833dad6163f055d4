package localcluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// These tests need no control-plane binaries: they use fake ones and check
// that Start fails early with a clear error and leaves no process behind.

// fakeBinDir holds a shell script for every binary; etcd runs etcdScript.
func fakeBinDir(t *testing.T, etcdScript string) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range binaries {
		script := "#!/bin/sh\nexit 1\n"
		if b == "etcd" && etcdScript != "" {
			script = etcdScript
		}
		if err := os.WriteFile(filepath.Join(dir, b), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeStages makes a stage folder and pod stage file (content is not read
// by anything before the processes start).
func fakeStages(t *testing.T) (stagesDir, podStages string) {
	t.Helper()
	stagesDir = t.TempDir()
	for _, f := range kwokStageFiles {
		p := filepath.Join(stagesDir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("kind: Stage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	podStages = filepath.Join(t.TempDir(), "pod-stages.yaml")
	if err := os.WriteFile(podStages, []byte("kind: Stage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return stagesDir, podStages
}

func noPIDFiles(g Gomega, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
	g.Expect(files).To(BeEmpty())
}

func TestStartMissingBinary(t *testing.T) {
	g := NewWithT(t)
	bin := t.TempDir()
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{Name: "missing", Dir: dir, BinDir: bin})
	var missing *MissingBinaryError
	g.Expect(errors.As(err, &missing)).To(BeTrue(), "%v", err)
	g.Expect(missing.Binary).To(Equal("etcd"))
	g.Expect(err.Error()).To(Equal("localcluster: etcd not found in " + bin + ": run `make control-plane-bins` first"))

	// One binary missing among the others is named too.
	bin = fakeBinDir(t, "")
	g.Expect(os.Remove(filepath.Join(bin, "kwok"))).To(Succeed())
	_, err = Start(context.Background(), Options{Name: "missing", Dir: dir, BinDir: bin})
	g.Expect(err).To(MatchError(ContainSubstring("kwok not found in " + bin + ": run `make control-plane-bins` first")))
	noPIDFiles(g, dir)
}

func TestStartFixedPortTaken(t *testing.T) {
	g := NewWithT(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	port := l.Addr().(*net.TCPAddr).Port

	stages, pod := fakeStages(t)
	dir := t.TempDir()
	_, err = Start(context.Background(), Options{
		Name: "taken", Dir: dir, BinDir: fakeBinDir(t, ""),
		KwokStagesDir: stages, PodStagesFile: pod,
		Ports: Ports{APIServer: port},
	})
	var inUse *PortInUseError
	g.Expect(errors.As(err, &inUse)).To(BeTrue(), "%v", err)
	g.Expect(inUse.Port).To(Equal(port))
	g.Expect(inUse.Use).To(Equal("kube-apiserver --secure-port"))
	g.Expect(err.Error()).To(HavePrefix("localcluster: port 127.0.0.1:" + strconv.Itoa(port) +
		" (kube-apiserver --secure-port) is already in use"))
	noPIDFiles(g, dir)
}

// etcdAddrInUse fails like etcd does when its client port is taken.
const etcdAddrInUse = `#!/bin/sh
for a in "$@"; do case "$a" in --listen-client-urls=*) u="${a#*=}";; esac; done
echo "{\"level\":\"fatal\",\"msg\":\"listen tcp ${u#http://}: bind: address already in use\"}" >&2
exit 1
`

func TestStartPortTakenAfterCheck(t *testing.T) {
	stages, pod := fakeStages(t)

	t.Run("fixed port: named in the error", func(t *testing.T) {
		g := NewWithT(t)
		ports, err := freePorts(1)
		g.Expect(err).NotTo(HaveOccurred())
		dir := t.TempDir()
		_, err = Start(context.Background(), Options{
			Name: "race", Dir: dir, BinDir: fakeBinDir(t, etcdAddrInUse),
			KwokStagesDir: stages, PodStagesFile: pod,
			Ports: Ports{EtcdClient: ports[0]},
		})
		var inUse *PortInUseError
		g.Expect(errors.As(err, &inUse)).To(BeTrue(), "%v", err)
		g.Expect(inUse.Port).To(Equal(ports[0]))
		g.Expect(inUse.Use).To(Equal("etcd client"))
		g.Expect(err.Error()).To(ContainSubstring("address already in use"))
		noPIDFiles(g, dir)
	})

	t.Run("picked port: retried on new ports, then named", func(t *testing.T) {
		g := NewWithT(t)
		dir := t.TempDir()
		began := time.Now()
		_, err := Start(context.Background(), Options{
			Name: "race", Dir: dir, BinDir: fakeBinDir(t, etcdAddrInUse),
			KwokStagesDir: stages, PodStagesFile: pod,
		})
		var inUse *PortInUseError
		g.Expect(errors.As(err, &inUse)).To(BeTrue(), "%v", err)
		g.Expect(inUse.Use).To(Equal("etcd client"))
		log, rerr := os.ReadFile(filepath.Join(dir, "logs", "etcd.log"))
		g.Expect(rerr).NotTo(HaveOccurred())
		g.Expect(strings.Count(string(log), "==== ")).To(Equal(3), "three attempts")
		g.Expect(time.Since(began)).To(BeNumerically("<", 30*time.Second))
		noPIDFiles(g, dir)
	})
}

func TestFreePortsAreDistinct(t *testing.T) {
	g := NewWithT(t)
	seen := map[int]bool{}
	for range 5 {
		ps, err := freePorts(6)
		g.Expect(err).NotTo(HaveOccurred())
		for _, p := range ps {
			g.Expect(seen[p]).To(BeFalse(), "port %d handed out twice", p)
			seen[p] = true
		}
	}
}

func TestWriteKwokConfig(t *testing.T) {
	g := NewWithT(t)
	stages, pod := fakeStages(t)
	out := filepath.Join(t.TempDir(), "kwok", "kwok.yaml")
	g.Expect(writeKwokConfig(out, stages, pod)).To(Succeed())
	b, err := os.ReadFile(out)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Count(string(b), "\n---\n")).To(Equal(len(kwokStageFiles) + 1))
	g.Expect(string(b)).NotTo(ContainSubstring("pod-ready.yaml"))
	g.Expect(string(b)).To(ContainSubstring(pod))
}

func TestStartRefusesForeignFolder(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep me"), 0o644)).To(Succeed())
	_, err := Start(context.Background(), Options{Name: "foreign", Dir: dir, BinDir: fakeBinDir(t, "")})
	g.Expect(err).To(MatchError(ContainSubstring("refusing to use " + dir)))
	g.Expect(filepath.Join(dir, "notes.txt")).To(BeARegularFile())
}
