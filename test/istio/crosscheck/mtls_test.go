package crosscheck

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	apisecurity "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
	istiomesh "github.com/proberedirect/probe-redirect-operator/internal/mesh/istio"
	"github.com/proberedirect/probe-redirect-operator/test/istio/istiod"
)

const (
	rootNamespace = "istio-system"
	appNamespace  = "shop"
)

var (
	modes = []apisecurity.PeerAuthentication_MutualTLS_Mode{
		apisecurity.PeerAuthentication_MutualTLS_UNSET,
		apisecurity.PeerAuthentication_MutualTLS_DISABLE,
		apisecurity.PeerAuthentication_MutualTLS_PERMISSIVE,
		apisecurity.PeerAuthentication_MutualTLS_STRICT,
	}
	// Two creation times one second apart: policies of one scope are often
	// created in the same second, and ties are broken by name.
	created = []time.Time{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)}
	// Selectors a generated workload policy may carry: matching the queried
	// workload (app=cart), matching with two labels, not matching.
	selectors = []map[string]string{{"app": "cart"}, {"app": "cart", "tier": "web"}, {"app": "other"}}
	// The workloads asked about, in the app namespace and in the root
	// namespace (where the mesh policy doubles as the namespace policy and
	// selector policies are ignored).
	workloads = []struct {
		namespace string
		labels    map[string]string
	}{
		{appNamespace, map[string]string{"app": "cart", "tier": "web"}},
		{appNamespace, map[string]string{"app": "cart"}},
		{appNamespace, map[string]string{"app": "billing"}},
		{"other", map[string]string{"app": "cart"}},
		{rootNamespace, map[string]string{"app": "cart", "tier": "web"}},
	}
	// Ports asked about; 0 is the workload-wide mode.
	ports = []int32{0, 8080, 9090}
)

// mtlsCase is one generated set of PeerAuthentications.
type mtlsCase struct {
	name     string
	policies []*securityv1.PeerAuthentication
}

func generateMTLSCases(n int, seed uint64) []mtlsCase {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	mode := func() *apisecurity.PeerAuthentication_MutualTLS {
		if r.IntN(6) == 0 {
			return nil // mtls left out: UNSET
		}
		return &apisecurity.PeerAuthentication_MutualTLS{Mode: modes[r.IntN(len(modes))]}
	}
	out := make([]mtlsCase, 0, n)
	for i := range n {
		var c mtlsCase
		var desc []string
		add := func(scope, namespace string, selector map[string]string) {
			pa := &securityv1.PeerAuthentication{
				ObjectMeta: metav1.ObjectMeta{
					Name:              fmt.Sprintf("%s-%d", scope, len(c.policies)),
					Namespace:         namespace,
					CreationTimestamp: metav1.NewTime(created[r.IntN(len(created))]),
				},
				Spec: apisecurity.PeerAuthentication{Mtls: mode()},
			}
			if selector != nil {
				pa.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: selector}
				if r.IntN(2) == 0 {
					pa.Spec.PortLevelMtls = map[uint32]*apisecurity.PeerAuthentication_MutualTLS{}
					for _, p := range []uint32{8080, 9090} {
						if r.IntN(2) == 0 {
							m := mode()
							if m == nil {
								m = &apisecurity.PeerAuthentication_MutualTLS{}
							}
							pa.Spec.PortLevelMtls[p] = m
						}
					}
				}
			}
			c.policies = append(c.policies, pa)
			desc = append(desc, fmt.Sprintf("%s/%s@%ds %v sel=%v ports=%v", namespace, pa.Name,
				pa.CreationTimestamp.Unix()-created[0].Unix(), pa.Spec.GetMtls().GetMode(), selector, pa.Spec.PortLevelMtls))
		}
		for range r.IntN(3) { // mesh-wide
			add("mesh", rootNamespace, nil)
		}
		if r.IntN(4) == 0 { // a selector policy in the root namespace: never applies
			add("root-workload", rootNamespace, selectors[r.IntN(len(selectors))])
		}
		for range r.IntN(3) { // namespace-wide
			add("namespace", appNamespace, nil)
		}
		for range r.IntN(4) { // workload
			add("workload", appNamespace, selectors[r.IntN(len(selectors))])
		}
		if r.IntN(4) == 0 { // another namespace's policy
			add("elsewhere", "other", nil)
		}
		c.name = fmt.Sprintf("case-%d[%s]", i, strings.Join(desc, "; "))
		out = append(out, c)
	}
	return out
}

// TestMTLSResolutionAgreesWithIstio compares internal/mesh/istio (PeerAuthentication resolution) with Istio's own
// resolution (pilot/pkg/model AuthenticationPolicies and
// pilot/pkg/security/authn ComposePeerAuthentication through NewMtlsPolicy)
// for every workload and port of 1,500 generated sets of PeerAuthentications
// (mesh root, namespace, selector and port-level policies, UNSET, several per
// scope created in the same or different seconds).
func TestMTLSResolutionAgreesWithIstio(t *testing.T) {
	cases := generateMTLSCases(1500, 9)
	compared, disagreements := 0, 0
	seen := map[v1alpha1.MTLSMode]int{}
	for _, c := range cases {
		ours := istiomesh.NewResolver(rootNamespace, c.policies)
		theirs, err := istiod.NewMTLS(rootNamespace, c.policies)
		if err != nil {
			t.Fatalf("%s: Istio's index: %v", c.name, err)
		}
		for _, w := range workloads {
			resolved := ours.ForWorkload(w.namespace, w.labels)
			for _, port := range ports {
				got := resolved.Mode
				if port != 0 {
					got = resolved.ForPort(port)
				}
				want := theirs.ModeForPort(w.namespace, w.labels, uint32(port))
				compared++
				seen[want]++
				if got != want {
					disagreements++
					if disagreements <= 10 {
						t.Errorf("%s\n  workload %s %v port %d: the operator says %s, Istio says %s", c.name, w.namespace, w.labels, port, got, want)
					}
				}
			}
		}
	}
	t.Logf("compared %d workload/port resolutions over %d policy sets: %d disagreements; Istio's answers: %v", compared, len(cases), disagreements, seen)
	for _, m := range []v1alpha1.MTLSMode{v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive, v1alpha1.MTLSDisable} {
		if seen[m] == 0 {
			t.Errorf("the generated cases never produced %s: the generator is too narrow", m)
		}
	}
}
