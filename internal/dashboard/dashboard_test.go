package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/dashboard"
	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/lifecycle"
	"github.com/anklume/anklume/internal/reconcile"
	"github.com/anklume/anklume/internal/verify"
)

const psot = `format_version: 1
project_name: i14-dash
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  adm:
    trust_level: admin
    description: "Admin <b>tools</b>"
    machines:
      adm-1: {}
  web:
    trust_level: untrusted
    machines:
      web-1:
        description: "<script>alert('x')</script> & \"q\""
      web-2: {state: stopped}
  off:
    enabled: false
    machines:
      off-1: {}
network_policies:
  - {description: "ssh <in>", from: adm, to: web-1, ports: [22]}
  - {from: host, to: web, ports: all, bidirectional: true}
  - {from: web-1, to: off, ports: [80]}
`

func newServer(t *testing.T, checkHost bool) *dashboard.Server {
	t.Helper()
	e := desktest.New(t, psot)
	return &dashboard.Server{Model: e.Model, CheckHost: checkHost,
		Status: func(ctx context.Context) (*lifecycle.Report, error) {
			r, _, err := lifecycle.Status(ctx, e.Fake, e.Model, lifecycle.StatusOptions{
				Observe: reconcile.ObserveOptions{Pools: []string{"default"}}, Usage: true})
			return r, err
		}}
}

func do(t *testing.T, h http.Handler, method, path, host string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestPage: one card per enabled domain in its trust colour class, one
// row per machine, an SVG edge per drawable policy, every name escaped,
// and nothing loaded from elsewhere.
func TestPage(t *testing.T) {
	s := newServer(t, false)
	res, body := do(t, s, http.MethodGet, "/", "")
	if res.StatusCode != 200 || res.Header.Get("Content-Security-Policy") != dashboard.CSP ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET /: %d %v", res.StatusCode, res.Header)
	}
	for _, want := range []string{
		`<section class="card trust-admin" id="domain-adm" data-domain="adm">`,
		`<section class="card trust-untrusted" id="domain-web" data-domain="web">`,
		`data-domain="web" data-machine="web-2"`,
		`<td data-field="state" class="state-Running">Running</td>`,
		`<td data-field="state" class="state-Stopped">Stopped</td>`,
		`id="policy-0" data-from="adm" data-to="web-1"`,
		`id="policy-1" data-from="host" data-to="web"`,
		`marker-start="url(#arrow)"`,
		`id="node-host"`,
		`&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;`,
		`Admin &lt;b&gt;tools&lt;/b&gt;`,
		`ssh &lt;in&gt;`,
		`<script src="/static/app.js" defer></script>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script>alert", "<b>tools", "domain-off", "policy-2", "style=", "<script>\n"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if ext := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(body); ext != "" {
		t.Errorf("page loads %s from elsewhere", ext)
	}
	_, css := do(t, s, http.MethodGet, "/static/app.css", "")
	for _, want := range []string{".trust-admin { border-color: #3333ff; }", ".trust-untrusted > .title { background: #1a0a0a; }"} {
		if !strings.Contains(css, want) {
			t.Errorf("app.css lacks %q", want)
		}
	}
	if res, js := do(t, s, http.MethodGet, "/static/app.js", ""); res.StatusCode != 200 || !strings.Contains(js, `fetch("/api/status"`) || strings.Contains(js, "innerHTML") {
		t.Errorf("app.js: %d", res.StatusCode)
	}
}

// TestAPI: /api/status is the status document with usage, /api/policies
// the resolved policies.
func TestAPI(t *testing.T) {
	s := newServer(t, false)
	res, body := do(t, s, http.MethodGet, "/api/status", "")
	var rep lifecycle.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/status: %d %v %s", res.StatusCode, err, body)
	}
	if rep.Infra != "i14-dash" || len(rep.Domains) != 3 || rep.Domains[1].Machines[0].State != lifecycle.StateRunning ||
		rep.Domains[1].Machines[0].Usage == nil || rep.Domains[1].Machines[1].Usage != nil {
		t.Errorf("/api/status: %s", body)
	}
	_, body = do(t, s, http.MethodGet, "/api/policies", "")
	want := `{"format_version":1,"infra":"i14-dash","policies":[` +
		`{"index":0,"auto":false,"description":"ssh \u003cin\u003e","from":"adm","from_kind":"domain","to":"web-1","to_kind":"machine","ports":[22],"protocol":"tcp","bidirectional":false},` +
		`{"index":1,"auto":false,"description":"","from":"host","from_kind":"host","to":"web","to_kind":"domain","ports":"all","protocol":"tcp","bidirectional":true},` +
		`{"index":2,"auto":false,"description":"","from":"web-1","from_kind":"machine","to":"off","to_kind":"domain","ports":[80],"protocol":"tcp","bidirectional":false}]}` + "\n"
	if body != want {
		t.Errorf("/api/policies:\n%s\nwant:\n%s", body, want)
	}
	// /api/reach is the expected matrix: adm reaches web-1 on tcp/22 by
	// the first policy and nothing else.
	res, body = do(t, s, http.MethodGet, "/api/reach", "")
	var mx reach.Matrix
	if err := json.Unmarshal([]byte(body), &mx); err != nil || res.StatusCode != 200 {
		t.Fatalf("/api/reach: %d %v %s", res.StatusCode, err, body)
	}
	var adm string
	for _, m := range mx.Machines {
		if m.Domain == "adm" {
			adm = m.Name
		}
	}
	p, ok := mx.Lookup(adm, "web-1")
	if mx.Infra != "i14-dash" || !ok || p.Allowed() != "tcp/22" || p.Rules[0].Reason.Policy != 1 {
		t.Errorf("/api/reach %s -> web-1: %+v", adm, p)
	}
}

// TestMethods: read-only; every method but GET and HEAD is 405 with
// Allow, unknown paths 404, and on loopback a foreign Host is refused.
func TestMethods(t *testing.T) {
	s := newServer(t, true)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, p := range []string{"/", "/api/status", "/api/policies"} {
			res, _ := do(t, s, m, p, "127.0.0.1:8888")
			if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d %q", m, p, res.StatusCode, res.Header.Get("Allow"))
			}
		}
	}
	for _, tc := range []struct {
		method, path, host string
		code               int
	}{
		{"HEAD", "/", "localhost:8888", 200},
		{"GET", "/api/status", "[::1]:8888", 200},
		{"GET", "/nope", "127.0.0.1:8888", 404},
		{"GET", "/", "evil.example:8888", 403},
		{"GET", "/api/status", "10.0.0.1", 403},
	} {
		if res, _ := do(t, s, tc.method, tc.path, tc.host); res.StatusCode != tc.code {
			t.Errorf("%s %s Host %s: %d, want %d", tc.method, tc.path, tc.host, res.StatusCode, tc.code)
		}
	}
}

// TestCheckListen: loopback by default; anything else needs
// --allow-remote.
func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		allow  bool
		loop   bool
		errSub string
	}{
		{"127.0.0.1:8888", false, true, ""},
		{"[::1]:0", false, true, ""},
		{"localhost:9000", false, true, ""},
		{"0.0.0.0:8888", false, false, "is not a loopback address"},
		{":8888", false, false, "is not a loopback address"},
		{"192.168.1.5:8888", false, false, "--allow-remote"},
		{"0.0.0.0:8888", true, false, ""},
		{"nonsense", false, false, "missing port"},
	} {
		loop, err := dashboard.CheckListen(tc.addr, tc.allow)
		if loop != tc.loop || (err == nil) != (tc.errSub == "") || err != nil && !strings.Contains(err.Error(), tc.errSub) {
			t.Errorf("CheckListen(%q, %v) = %v, %v", tc.addr, tc.allow, loop, err)
		}
	}
}

// TestExamples renders the page of every example (nothing deployed):
// a card per enabled domain and an edge per policy whose two ends are
// drawn.
func TestExamples(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			res, dl, err := compiler.Compile(examples.FS(), compiler.Input{Path: name + "/infra.yml", Display: "infra.yml"}, desktest.HostOptions())
			if err != nil || res == nil || res.Model == nil {
				t.Fatalf("compile: %v %v", err, dl)
			}
			m := res.Model
			s := &dashboard.Server{Model: m, Status: func(context.Context) (*lifecycle.Report, error) {
				return &lifecycle.Report{FormatVersion: 1, Infra: m.ProjectName}, nil
			}}
			_, body := do(t, s, http.MethodGet, "/", "")
			enabled := map[string]bool{"host": true}
			for _, d := range m.Domains {
				if d.Enabled {
					enabled[d.Name] = true
					if !strings.Contains(body, `id="domain-`+d.Name+`"`) {
						t.Errorf("no card for %s", d.Name)
					}
				}
			}
			for _, p := range m.Policies {
				dom := func(e model.Endpoint) string {
					if e.Domain != nil {
						return e.Domain.Name
					}
					return "host"
				}
				id := fmt.Sprintf(`id="policy-%d" data-from="%s" data-to="%s"`, p.Index, p.From.Name, p.To.Name)
				if drawn := strings.Contains(body, id); drawn != (enabled[dom(p.From)] && enabled[dom(p.To)]) {
					t.Errorf("policy %d (%s -> %s): drawn %v", p.Index, p.From.Name, p.To.Name, drawn)
				}
			}
		})
	}
}

// TestReachMatrix: the page draws the reachability matrix, domains ×
// domains, host and outside, each cell with its verdict and its proof
// from the last verify: proven where live probes agreed, mismatch where
// one did not, computed where none ran (a probe the budget cut off proves
// nothing); without a record every cell is computed.
func TestReachMatrix(t *testing.T) {
	s := newServer(t, false)
	_, body := do(t, s, http.MethodGet, "/", "")
	cell := func(body, from, to string) string {
		m := regexp.MustCompile(`<td class="cell [^"]*" data-from="` + from + `" data-to="` + to + `" data-verdict="(\w+)" data-proof="(\w+)"[^>]*><span class="label">([^<]*)<`).FindStringSubmatch(body)
		if m == nil {
			return "absent"
		}
		return m[1] + " " + m[2] + " " + m[3]
	}
	if strings.Count(body, "cross-domain drop: no policy opens adm -&gt; web") != 1 {
		t.Error("the reasons of adm -> web are not listed once each in its tooltip")
	}
	if !strings.Contains(body, "no live verify on this host yet") {
		t.Error("no record: the page does not say every cell is computed")
	}
	for _, tc := range [][3]string{
		{"adm", "adm", "none computed -"},
		{"adm", "web", "partial computed some machines: tcp/22"},
		{"web", "web", "allow computed all"},
		{"web", "adm", "deny computed none"},
		{"adm", "outside", "allow computed all"},
		{"adm", "host", "partial computed udp/53 tcp/53 udp/67 icmp"},
		{"web", "off", "absent"},
	} {
		if got := cell(body, tc[0], tc[1]); got != tc[2] {
			t.Errorf("no record: cell %s -> %s: %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
	if n := strings.Count(body, `<td class="cell `); n != 2*4 {
		t.Errorf("%d cells, want 2 domains × (2 domains, host, outside)", n)
	}

	s.LastVerify = func() (verify.Document, bool, error) {
		return verify.Document{FormatVersion: 1, Infra: "i14-dash", Time: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), Probes: 3, Mismatches: 1,
			Results: []verify.ResultJSON{
				{FromDomain: "web", ToDomain: "adm", Outcome: verify.Timeout},
				{FromDomain: "web", ToDomain: "adm", Outcome: verify.Timeout},
				{FromDomain: "adm", ToDomain: "web", Outcome: verify.Refused, Mismatch: true},
				{FromDomain: "adm", ToDomain: "outside", Outcome: "not run"},
			}}, true, nil
	}
	_, body = do(t, s, http.MethodGet, "/", "")
	for _, tc := range [][3]string{
		{"web", "adm", "deny proven none"},
		{"adm", "web", "partial mismatch some machines: tcp/22"},
		{"adm", "outside", "allow computed all"},
	} {
		if got := cell(body, tc[0], tc[1]); got != tc[2] {
			t.Errorf("record: cell %s -> %s: %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
	for _, want := range []string{
		`class="verify verify-bad" id="verify-summary">last verify on this host at 2026-12-05 18:00:00 UTC: 3 probes, 1 mismatch<`,
		`&#10003; proven: 2 live probes`, `&#10007; live probes disagree: 1 of 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	s.LastVerify = func() (verify.Document, bool, error) { return verify.Document{}, false, fmt.Errorf("bad <record>") }
	if _, body = do(t, s, http.MethodGet, "/", ""); !strings.Contains(body, "cannot be read: bad &lt;record&gt;") {
		t.Error("an unreadable record is not shown")
	}
}

// TestMatrixLabels: a cell says what every pair of machines lets through,
// then what only some of them do.
func TestMatrixLabels(t *testing.T) {
	e := desktest.New(t, `format_version: 1
project_name: labels
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  a:
    trust_level: admin
    machines:
      a-1: {}
      a-2: {}
  b:
    trust_level: trusted
    machines:
      b-1: {}
      b-2: {}
network_policies:
  - {from: a-1, to: host, ports: [3142]}
  - {from: a, to: b-1, ports: [80]}
  - {from: b, to: a, ports: [22, 443]}
`)
	v := dashboard.Matrix(e.Model, nil)
	got := map[string]string{}
	for _, r := range v.Rows {
		for _, c := range r.Cells {
			got[c.From+">"+c.To] = c.Verdict + ": " + c.Label
		}
	}
	for k, want := range map[string]string{
		"a>host":    "partial: udp/53 tcp/53 udp/67 icmp + some machines: tcp/3142",
		"a>b":       "partial: some machines: tcp/80",
		"b>a":       "partial: tcp/22,443",
		"a>a":       "allow: all",
		"b>outside": "allow: all",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q", k, got[k], want)
		}
	}
}
