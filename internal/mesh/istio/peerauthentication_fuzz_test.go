package istio

import (
	"testing"
	"time"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proberedirect/probe-redirect-operator/api/v1alpha1"
)

// FuzzResolver builds PeerAuthentications from fuzzed bytes (namespace, selector, mode and
// port-level modes, creation time, deletion) and resolves workloads: no input may panic, and
// every answer is STRICT, PERMISSIVE or DISABLE.
func FuzzResolver(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "app", "web", uint32(8080))
	f.Add([]byte{255, 255, 0, 0, 7, 1}, "", "", uint32(0))
	f.Add([]byte{}, "x", "y", uint32(65536))
	f.Fuzz(func(t *testing.T, data []byte, key, value string, port uint32) {
		namespaces := []string{"istio-system", "shop", "other"}
		var policies []*securityv1.PeerAuthentication
		for i := 0; i+4 <= len(data) && len(policies) < 16; i += 4 {
			b := data[i : i+4]
			pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{
				Name:              string(rune('a' + int(b[0])%26)),
				Namespace:         namespaces[int(b[0])%len(namespaces)],
				CreationTimestamp: metav1.NewTime(time.Unix(int64(b[1]%3), 0)),
			}}
			if b[1]&0x80 != 0 {
				pa.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
			}
			if b[2]%5 != 0 {
				pa.Spec.Mtls = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_Mode(int32(b[2]) % 6)}
			}
			if b[3]&1 != 0 {
				pa.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{key: value}}
			}
			if b[3]&2 != 0 {
				pa.Spec.PortLevelMtls = map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{
					port: {Mode: securityv1beta1.PeerAuthentication_MutualTLS_Mode(int32(b[3]>>2) % 6)},
				}
			}
			if b[3]&4 != 0 {
				policies = append(policies, nil)
			}
			policies = append(policies, pa)
		}
		r := NewResolver("istio-system", policies)
		for _, ns := range namespaces {
			for _, labels := range []map[string]string{nil, {key: value}} {
				w := r.ForWorkload(ns, labels)
				for _, mode := range []v1alpha1.MTLSMode{w.Mode, w.ForPort(int32(port)), w.ForPort(int32(port % 65536)), r.NamespaceMode(ns)} { //nolint:gosec // fuzzed
					switch mode {
					case v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive, v1alpha1.MTLSDisable:
					default:
						t.Fatalf("mode %q for %s %v port %d", mode, ns, labels, port)
					}
				}
			}
		}
	})
}
