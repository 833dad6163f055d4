package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/proberedirect/probe-redirect-operator/test/testenv"
)

// reviewedRules is everything the operator may do cluster-wide, reviewed by a person. A new
// permission in the generated ClusterRole fails this test until it is reviewed and added here.
var reviewedRules = map[string][]string{
	"mesh.proberedirect.io/proberedirectpolicies":            {"get", "list", "watch", "update", "patch"},
	"mesh.proberedirect.io/proberedirectpolicies/status":     {"get", "update", "patch"},
	"mesh.proberedirect.io/proberedirectpolicies/finalizers": {"update"},
	// Only patch: the operator annotates templates by server-side apply and never creates,
	// updates or deletes workloads.
	"apps/deployments":  {"get", "list", "watch", "patch"},
	"apps/statefulsets": {"get", "list", "watch", "patch"},
	"apps/daemonsets":   {"get", "list", "watch", "patch"},
	"/pods":             {"get", "list", "watch"},
	"/namespaces":       {"get", "list", "watch"},
	// Reads kubelet Unhealthy events; records its own through events.k8s.io.
	"/events":                               {"list", "watch"},
	"events.k8s.io/events":                  {"create", "patch"},
	"security.istio.io/peerauthentications": {"get", "list", "watch"},
	// Kuma's Mesh (cluster-scoped) and MeshTLS policies, read only.
	"kuma.io/meshes":    {"get", "list", "watch"},
	"kuma.io/meshtlses": {"get", "list", "watch"},
}

func TestClusterRoleIsLeastPrivilege(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	g.Expect(yaml.Unmarshal(data, role)).To(Succeed())
	g.Expect(role.Rules).NotTo(BeEmpty())

	granted := map[string][]string{}
	for _, rule := range role.Rules {
		g.Expect(rule.NonResourceURLs).To(BeEmpty(), "no non-resource URLs")
		g.Expect(rule.ResourceNames).To(BeEmpty())
		for _, verb := range rule.Verbs {
			g.Expect(verb).NotTo(Equal("*"), "no wildcard verbs")
		}
		for _, group := range rule.APIGroups {
			g.Expect(group).NotTo(Equal("*"), "no wildcard API groups")
			for _, resource := range rule.Resources {
				g.Expect(resource).NotTo(ContainSubstring("*"), "no wildcard resources")
				g.Expect(resource).NotTo(Equal("secrets"), "the operator never reads Secrets")
				key := group + "/" + resource
				granted[key] = append(granted[key], rule.Verbs...)
			}
		}
	}
	for key, verbs := range granted {
		allowed, ok := reviewedRules[key]
		g.Expect(ok).To(BeTrue(), "unreviewed permission on %s: %v", key, verbs)
		for _, verb := range verbs {
			g.Expect(slices.Contains(allowed, verb)).To(BeTrue(), "unreviewed verb %q on %s", verb, key)
		}
	}
	for key := range reviewedRules {
		g.Expect(granted).To(HaveKey(key), "the reviewed list names %s, which the role no longer grants: trim the list", key)
	}
	g.Expect(strings.Join(granted["apps/deployments"], ",")).NotTo(ContainSubstring("delete"))
}
