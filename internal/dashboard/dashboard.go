// Package dashboard serves the read-only web page of `anklume dashboard`:
// every domain as a card in its trust colour with its machines (type,
// state, IP, CPU time, memory), the network policies drawn as a graph
// between the host, domains and machines, and the reachability matrix,
// domains × domains, host and outside, each cell allowed, denied or
// partial and marked proven or contradicted by the last live `anklume
// verify`, or only computed (matrix.go).
//
// Routes: "/" (the page), "/api/status" (the `status --json` document,
// plus a "usage" object for each running machine), "/api/policies" (the
// resolved network policies), "/api/reach" (the expected reachability
// matrix, as `anklume verify --expected --json`) and "/static/app.js",
// "/static/app.css".
// Any other path is 404; any method but GET and HEAD is 405.
//
// Safety: the page is rendered with html/template (every name from
// infra.yml or from Incus is escaped for its context, text, attribute or
// SVG), the graph is drawn on the server, nothing is loaded from outside
// (the script and style sheet are embedded in the binary), and every
// response carries a strict Content-Security-Policy (no inline script or
// style, no framing, connections to the page's own origin only),
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer. On a
// loopback address the server also refuses requests whose Host header is
// not a loopback name (a web page elsewhere cannot reach it through DNS
// rebinding). The page updates itself every 5 seconds by polling
// /api/status from its script, without reloading.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/internal/lifecycle"
	"github.com/anklume/anklume/internal/trust"
	"github.com/anklume/anklume/internal/verify"
)

// DefaultListen is the default listen address.
const DefaultListen = "127.0.0.1:8888"

// CSP is the Content-Security-Policy of every response.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets
var assets embed.FS

// The templates are parsed on the first request, not at start: every
// anklume command links this package.
var (
	pageTmpl = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("page.html").Funcs(template.FuncMap{
			"bytes":   humanBytes,
			"seconds": func(s float64) string { return fmt.Sprintf("%.1f s", s) },
		}).ParseFS(assets, "assets/page.html"))
	})
	// The style sheet only holds values of anklume's own colour table.
	cssTmpl = sync.OnceValue(func() *texttemplate.Template {
		return texttemplate.Must(texttemplate.New("app.css").ParseFS(assets, "assets/app.css"))
	})
)

// Server is the dashboard's HTTP handler.
type Server struct {
	// Model is the compiled PSOT.
	Model *model.Infra
	// Status reads the live status (lifecycle.Status with Usage).
	Status func(ctx context.Context) (*lifecycle.Report, error)
	// CheckHost refuses requests whose Host is not a loopback name.
	CheckHost bool
	// Now is the clock (time.Now).
	Now func() time.Time
	// LastVerify reads the record of the last `anklume verify` on this
	// host (ok false when there is none); nil shows every cell of the
	// reachability matrix as computed.
	LastVerify func() (doc verify.Document, ok bool, err error)

	mu     sync.Mutex
	cached *lifecycle.Report
	at     time.Time
}

// maxAge is how long a status read serves every request (several
// browser tabs poll at once).
const maxAge = 2 * time.Second

// status returns the live status, read at most every maxAge.
func (s *Server) status(ctx context.Context) (*lifecycle.Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cached != nil && now.Sub(s.at) < maxAge {
		return s.cached, nil
	}
	r, err := s.Status(ctx)
	if err != nil {
		return nil, err
	}
	s.cached, s.at = r, now
	return r, nil
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if s.CheckHost && !loopbackHost(r.Host) {
		http.Error(w, "forbidden host", http.StatusForbidden)
		return
	}
	var serve func(http.ResponseWriter, *http.Request)
	switch r.URL.Path {
	case "/":
		serve = s.page
	case "/api/status":
		serve = s.apiStatus
	case "/api/policies":
		serve = s.apiPolicies
	case "/api/reach":
		serve = s.apiReach
	case "/static/app.js":
		serve = s.js
	case "/static/app.css":
		serve = s.css
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the dashboard is read-only", http.StatusMethodNotAllowed)
		return
	}
	serve(w, r)
}

// PageData is what the page template renders.
type PageData struct {
	Infra    string
	NFTables string
	Updated  string
	Error    string
	Domains  []DomainCard
	Graph    Graph
	Reach    ReachView
	Levels   []trust.Palette
}

// DomainCard is one domain's card.
type DomainCard struct {
	lifecycle.DomainStatus
	Level       string
	Description string
	Subnet      string
	Descs       map[string]string
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	data := PageData{Infra: s.Model.ProjectName, Updated: s.now().UTC().Format(time.RFC3339), Levels: trust.Levels()}
	rep, err := s.status(r.Context())
	if err != nil {
		data.Error = err.Error()
		rep = &lifecycle.Report{}
	}
	data.NFTables = "not checked"
	if rep.NFTables != nil {
		data.NFTables = *rep.NFTables
	}
	byName := map[string]lifecycle.DomainStatus{}
	for _, d := range rep.Domains {
		byName[d.Name] = d
	}
	for _, d := range enabledDomains(s.Model) {
		ds, ok := byName[d.Name]
		if !ok {
			ds = lifecycle.DomainStatus{Name: d.Name, Project: d.Project, Network: d.Bridge}
		}
		card := DomainCard{DomainStatus: ds, Level: trust.Level(d), Description: d.Description,
			Subnet: d.CIDR(), Descs: map[string]string{}}
		for _, mc := range d.Machines {
			card.Descs[mc.Name] = mc.Description
		}
		data.Domains = append(data.Domains, card)
	}
	data.Graph = Layout(s.Model)
	var last *verify.Document
	var lastErr error
	if s.LastVerify != nil {
		doc, ok, err := s.LastVerify()
		if ok && err == nil {
			last = &doc
		}
		lastErr = err
	}
	data.Reach = Matrix(s.Model, last)
	if lastErr != nil {
		data.Reach.Verify, data.Reach.VerifyOK = "the record of the last verify cannot be read: "+lastErr.Error(), false
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl().Execute(w, data); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
	}
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	rep, err := s.status(r.Context())
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// PolicyJSON is one policy of /api/policies.
type PolicyJSON struct {
	Index         int    `json:"index"`
	Auto          bool   `json:"auto"`
	Description   string `json:"description"`
	From          string `json:"from"`
	FromKind      string `json:"from_kind"`
	To            string `json:"to"`
	ToKind        string `json:"to_kind"`
	Ports         any    `json:"ports"`
	Protocol      string `json:"protocol"`
	Bidirectional bool   `json:"bidirectional"`
}

// Policies returns the resolved policies of m as /api/policies lists
// them: ports is "all" or the list of ports.
func Policies(m *model.Infra) []PolicyJSON {
	out := []PolicyJSON{}
	for _, p := range m.Policies {
		var ports any = "all"
		if !p.AllPorts {
			ports = p.UniquePorts()
		}
		out = append(out, PolicyJSON{Index: p.Index, Auto: p.Auto, Description: p.Description,
			From: p.From.Name, FromKind: p.From.Kind, To: p.To.Name, ToKind: p.To.Kind,
			Ports: ports, Protocol: p.Protocol, Bidirectional: p.Bidirectional})
	}
	return out
}

func (s *Server) apiPolicies(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"format_version": 1, "infra": s.Model.ProjectName, "policies": Policies(s.Model)})
}

func (s *Server) apiReach(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, reach.Compute(s.Model))
}

func (s *Server) js(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/app.js")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) css(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	if err := cssTmpl().Execute(w, trust.Levels()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// CheckListen refuses a listen address that is not loopback unless
// allowRemote: the host part must be a loopback IP or "localhost" (an
// empty host means every interface).
func CheckListen(addr string, allowRemote bool) (loopback bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--listen %q: %w", addr, err)
	}
	loopback = loopbackHost(host)
	if !loopback && !allowRemote {
		return false, fmt.Errorf("--listen %q is not a loopback address: the dashboard shows your whole infrastructure to whoever reaches it; add --allow-remote to serve it there anyway", addr)
	}
	return loopback, nil
}

// loopbackHost reports whether host (optionally with a port) is
// "localhost" or a loopback IP.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// humanBytes prints a byte count as KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if f < unit {
			break
		}
		f, suffix = f/unit, s
	}
	return fmt.Sprintf("%.1f %s", f, suffix)
}
