package istiod

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestProxyTagMatchesTheModule(t *testing.T) {
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, r := range f.Require {
		if r.Mod.Path == "istio.io/istio" {
			version = r.Mod.Version
		}
	}
	commit := ProxyTag[strings.LastIndex(ProxyTag, ".")+1:]
	if version == "" || !strings.HasSuffix(version, "-"+commit) {
		t.Fatalf("ProxyTag %q names commit %q but go.mod requires istio.io/istio %q", ProxyTag, commit, version)
	}
}

func TestRenderedChartInjectsWithTheChartsSettings(t *testing.T) {
	for _, rewrite := range []bool{true, false} {
		c, err := Render(RenderOptions{RewriteAppHTTPProbe: rewrite})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.InjectorValues, `"rewriteAppHTTPProbe": `+map[bool]string{true: "true", false: "false"}[rewrite]) {
			t.Errorf("rewrite=%v: values lack the setting:\n%s", rewrite, c.InjectorValues)
		}
		if !strings.Contains(c.InjectorValues, ProxyTag) {
			t.Errorf("values lack the tag %s", ProxyTag)
		}
		port, err := c.StatusPort()
		if err != nil || port != 15020 {
			t.Errorf("StatusPort() = %d, %v; want Istio's default 15020", port, err)
		}
		mwc, err := c.WebhookConfiguration("https://127.0.0.1:1/inject", []byte("ca"))
		if err != nil {
			t.Fatal(err)
		}
		if len(mwc.Webhooks) < 2 {
			t.Fatalf("the chart's webhook configuration has %d webhooks", len(mwc.Webhooks))
		}
		for _, w := range mwc.Webhooks {
			if w.ClientConfig.URL == nil || w.ClientConfig.Service != nil || w.NamespaceSelector == nil || w.ObjectSelector == nil {
				t.Errorf("webhook %s: clientConfig %+v, selectors %v %v", w.Name, w.ClientConfig, w.NamespaceSelector, w.ObjectSelector)
			}
		}
	}
}
