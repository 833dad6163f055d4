//go:build bench

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// scenarioGrowth is scenario 7: scenario 1's convergence by the operator at each size of
// BENCH_GROWTH, each in a namespace of its own, with the time and the peak RSS per workload, and
// their slopes (least squares over the sizes).
func (b *bench) scenarioGrowth(ctx context.Context) {
	p := b.p
	if len(p.Growth) == 0 || b.op == nil || !b.op.Alive() {
		return
	}
	var sizes, took, peaks []float64
	var rows []string
	for _, n := range p.Growth {
		ns := growthNamespace(n)
		logf("[7] growth: a policy over %d Deployments in %s", n, ns)
		_ = resetPeakRSS(b.op.Pid())
		began := time.Now()
		if err := b.cl.Create(ctx, b.policy(ns)); err != nil {
			b.fail("[7] creating the policy: %v", err)
			return
		}
		if _, err := b.waitConverged(ctx, ns, n); err != nil {
			b.fail("[7] the operator did not converge %d workloads: %v", n, err)
			return
		}
		d := time.Since(began)
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, p.Timeout, true, func(ctx context.Context) (bool, error) {
			return b.policyReady(ctx, ns, n), nil
		})
		if err != nil {
			b.fail("[7] the policy of %s is not Ready: %v", ns, err)
			return
		}
		peak, _ := rss(b.op.Pid())
		logf("[7] growth: %d workloads in %s (%.3f s each), peak RSS %.1f MiB", n, d.Round(100*time.Millisecond), d.Seconds()/float64(n), peak)
		sizes, took, peaks = append(sizes, float64(n)), append(took, d.Seconds()), append(peaks, peak)
		rows = append(rows, fmt.Sprintf("%d: %.1f s (%.3f s each), peak %.1f MiB", n, d.Seconds(), d.Seconds()/float64(n), peak))
	}
	first, last := took[0]/sizes[0], took[len(took)-1]/sizes[len(sizes)-1]
	timeSlope, _ := fit(sizes, took)
	rssSlope, rssBase := fit(sizes, peaks)
	b.add(figure{Scenario: "7", Name: "growth: time per workload, largest size / smallest", Value: last / first, Unit: "x",
		Target: "flat (<= 1.2x)", Met: ptr(len(sizes) > 1 && last/first <= 1.2),
		Note: fmt.Sprintf("time = %.3f s per workload x N + intercept (least squares); %s", timeSlope, strings.Join(rows, "; "))})
	b.add(figure{Scenario: "7", Name: "growth: peak RSS slope", Value: rssSlope * 1024, Unit: "KiB/workload",
		Note: fmt.Sprintf("peak RSS = %.1f KiB per workload x N + %.1f MiB (least squares; each size's peak since its policy was created, over a cluster holding every size)", rssSlope*1024, rssBase)})
}

// fit is the least-squares line y = slope*x + intercept.
func fit(x, y []float64) (slope, intercept float64) {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx, sy, sxx, sxy = sx+x[i], sy+y[i], sxx+x[i]*x[i], sxy+x[i]*y[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		slope = (n*sxy - sx*sy) / d
	}
	return slope, (sy - slope*sx) / n
}
