//go:build bench

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// floor is the baseline of scenario 1: a bare client-go program that sets the same template
// annotation on the n Deployments of ns, keeping at most inFlight rollouts going at once, and
// waits for each by kubectl's rollout-status rules (rolledOut, on the generation its patch
// made), watching the Deployments through one informer rather than polling. It has no
// client-side rate limit, as the operator's controller-runtime client. It returns the time from
// the first patch to the last rollout's end.
func floor(ctx context.Context, cs kubernetes.Interface, t *tracker, ns string, n, inFlight int, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	err := parallel(ctx, n, inFlight, func(ctx context.Context, i int) error {
		d, err := cs.AppsV1().Deployments(ns).Patch(ctx, deploymentName(i), types.StrategicMergePatchType, rewritePatch, metav1.PatchOptions{})
		if err != nil {
			return err
		}
		return t.waitRolledOut(ctx, ns, d.Name, d.Generation)
	})
	return time.Since(began), err
}

// manual is the other baseline of scenario 1, as the seeds do it by hand: for each of the n
// Deployments of ns in turn, `kubectl patch` then `kubectl rollout status`. It returns the total
// time.
func manual(ctx context.Context, kubectl, kubeconfig, ns string, n int, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	for i := range n {
		name := "deployment/" + deploymentName(i)
		for _, args := range [][]string{
			{"patch", name, "-n", ns, "--type=strategic", "-p", string(rewritePatch)},
			{"rollout", "status", name, "-n", ns, "--timeout=" + timeout.String()},
		} {
			cmd := exec.CommandContext(ctx, kubectl, args...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				return 0, fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
			}
		}
	}
	return time.Since(began), nil
}
