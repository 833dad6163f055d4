//go:build bench

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// auditEvent is what the harness reads of one kube-apiserver audit event (audit.k8s.io/v1 Event).
type auditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// apiCost is what the operator asked of the API server in a window, from the audit log.
type apiCost struct {
	Requests int `json:"requests"`
	Writes   int `json:"writes"`
	// TemplateWrites are writes to workloads (Deployments, StatefulSets, DaemonSets), not their
	// status; TemplateWorkloads the workloads written.
	TemplateWrites    int `json:"templateWrites"`
	TemplateWorkloads int `json:"templateWorkloads"`
	// StatusWrites are writes to policies' status subresource; PolicyWrites to the policies
	// themselves; MaxStatusWritesIn2s the most status writes to one policy within 2 s.
	StatusWrites        int `json:"statusWrites"`
	PolicyWrites        int `json:"policyWrites"`
	MaxStatusWritesIn2s int `json:"maxStatusWritesIn2s"`
	// EventWrites create or patch Events (core/v1 or events.k8s.io).
	EventWrites int `json:"eventWrites"`
	// ResourceReads are GETs and LISTs of API objects (not watches): reads the cache did not
	// serve. DiscoveryReads are GETs of non-resource URLs (/api, /apis, ...).
	ResourceReads  int            `json:"resourceReads"`
	ReadsByKind    map[string]int `json:"readsByResource,omitempty"`
	DiscoveryReads int            `json:"discoveryReads"`
	// Conflicts are 409 answers.
	Conflicts    int            `json:"conflicts"`
	WritesByKind map[string]int `json:"writesByResource,omitempty"`
}

// readAudit counts the requests of user received in [from, to) in the audit log.
func readAudit(path, user string, from, to time.Time) (apiCost, error) {
	c := apiCost{ReadsByKind: map[string]int{}, WritesByKind: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer func() { _ = f.Close() }()
	workloads := map[string]bool{}
	statusTimes := map[string][]time.Time{}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var e auditEvent
			if jerr := json.Unmarshal(line, &e); jerr == nil && e.User.Username == user &&
				!e.RequestReceivedTimestamp.Before(from) && e.RequestReceivedTimestamp.Before(to) {
				c.add(&e, workloads, statusTimes)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
	}
	c.TemplateWorkloads = len(workloads)
	for _, ts := range statusTimes {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		for i := range ts {
			j := i
			for j < len(ts) && ts[j].Sub(ts[i]) < 2*time.Second {
				j++
			}
			c.MaxStatusWritesIn2s = max(c.MaxStatusWritesIn2s, j-i)
		}
	}
	return c, nil
}

func (c *apiCost) add(e *auditEvent, workloads map[string]bool, statusTimes map[string][]time.Time) {
	if e.Verb == "watch" {
		return
	}
	c.Requests++
	if e.ResponseStatus != nil && e.ResponseStatus.Code == 409 {
		c.Conflicts++
	}
	if e.ObjectRef == nil {
		if e.Verb == "get" {
			c.DiscoveryReads++
		}
		return
	}
	o := e.ObjectRef
	kind := o.Resource
	if o.Subresource != "" {
		kind += "/" + o.Subresource
	}
	switch {
	case e.Verb == "get" || e.Verb == "list":
		c.ResourceReads++
		c.ReadsByKind[e.Verb+" "+kind]++
	case isWrite(e.Verb):
		c.Writes++
		c.WritesByKind[e.Verb+" "+kind]++
		switch {
		case (o.Resource == "deployments" || o.Resource == "statefulsets" || o.Resource == "daemonsets") && o.Subresource == "":
			c.TemplateWrites++
			workloads[o.Resource+"/"+o.Namespace+"/"+o.Name] = true
		case o.Resource == "proberedirectpolicies" && o.Subresource == "status":
			c.StatusWrites++
			key := o.Namespace + "/" + o.Name
			statusTimes[key] = append(statusTimes[key], e.RequestReceivedTimestamp)
		case o.Resource == "proberedirectpolicies":
			c.PolicyWrites++
		case o.Resource == "events":
			c.EventWrites++
		}
	}
}

// metrics is one scrape of the operator's Prometheus endpoint: the sum of each series' value by
// metric name and the labels asked for.
type metrics map[string]float64

func scrape(url string) (metrics, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m := metrics{}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		m[series] += v
		if i := strings.IndexByte(series, '{'); i >= 0 {
			m[series[:i]] += v
		}
	}
	return m, s.Err()
}

// sum adds the series of name whose labels contain every one of the given label="value" pairs.
func (m metrics) sum(name string, labels ...string) float64 {
	if len(labels) == 0 {
		return m[name]
	}
	total := 0.0
	for series, v := range m {
		if !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(series, l)
		}
		if ok {
			total += v
		}
	}
	return total
}

// resetPeakRSS resets the process's peak resident set size (VmHWM) by writing 5 to
// /proc/<pid>/clear_refs (Linux 4.0+), so that the next peakRSS reads the peak since now.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// statusMiB reads the named fields of /proc/<pid>/status (sizes in kB, such as "VmRSS"), in MiB.
// Its error says that the file cannot be read or lacks one of them.
func statusMiB(pid int, names ...string) (map[string]float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !slices.Contains(names, strings.TrimSuffix(fields[0], ":")) {
			continue
		}
		kb, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(fields[0], ":")] = kb / 1024
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in /proc/%d/status", n, pid)
		}
	}
	return out, nil
}

// rss reads VmHWM, the peak resident set size of pid since it started or since resetPeakRSS, in
// MiB.
func rss(pid int) (float64, error) {
	v, err := statusMiB(pid, "VmHWM")
	return v["VmHWM"], err
}

// rssParts reads the two parts of pid's resident set now, in MiB: RssFile, the pages of files it
// maps (its own binary's, mostly), and RssAnon, its anonymous memory (the Go heap, stacks and
// runtime).
func rssParts(pid int) (file, anon float64, err error) {
	v, err := statusMiB(pid, "RssFile", "RssAnon")
	return v["RssFile"], v["RssAnon"], err
}

// currentRSS reads VmRSS, the resident set size of pid now, in MiB.
func currentRSS(pid int) (float64, error) {
	v, err := statusMiB(pid, "VmRSS")
	return v["VmRSS"], err
}
