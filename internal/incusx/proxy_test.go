package incusx

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSocketProxyForwardsAndRecords(t *testing.T) {
	dir := t.TempDir()
	backend := filepath.Join(dir, "backend.socket")
	ln, err := net.Listen("unix", backend)
	if err != nil {
		t.Fatal(err)
	}
	const answerAfter = 20 * time.Millisecond
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(answerAfter)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI())
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	log := &RequestLog{}
	p, err := NewSocketProxy(backend, filepath.Join(dir, "proxy.socket"), log)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p.Path)
	}}}
	resp, err := client.Get("http://unix.socket/1.0/instances?all-projects=true&recursion=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "GET /1.0/instances?all-projects=true&recursion=1" {
		t.Errorf("backend saw %q", body)
	}
	if got := log.Strings(); !slices.Equal(got, []string{"GET /1.0/instances?all-projects=true&recursion=1"}) {
		t.Errorf("log = %v", got)
	}
	// The proxy times each answer: the backend's 20 ms are in it.
	if d := log.Requests()[0].Duration; d < answerAfter {
		t.Errorf("recorded duration %v, want at least %v", d, answerAfter)
	}
	client.CloseIdleConnections()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Path); !os.IsNotExist(err) {
		t.Errorf("the proxy socket remains after Close: %v", err)
	}
}

// TestSocketProxyCountsPlanReads is §16 #63 as the e2e tests will run it: a
// process that talks to Incus through the proxy makes exactly the §9.1
// requests, and the proxy and the client's transport count the same.
func TestSocketProxyCountsPlanReads(t *testing.T) {
	realServer(t, &RequestLog{})
	proxyLog, clientLog := &RequestLog{}, &RequestLog{}
	p, err := NewSocketProxy(socketPath(), filepath.Join(t.TempDir(), "incus.socket"), proxyLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	c, err := Connect(context.Background(), Options{Socket: p.Path, Log: clientLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := planReads(context.Background(), c, "default"); err != nil {
		t.Fatal(err)
	}
	if got := proxyLog.Strings(); !slices.Equal(got, wantPlanReads) {
		t.Errorf("proxy counted:\n%s\nwant:\n%s", join(got), join(wantPlanReads))
	}
	if !slices.Equal(proxyLog.Strings(), clientLog.Strings()) {
		t.Errorf("proxy and transport disagree:\n%s\n%s", join(proxyLog.Strings()), join(clientLog.Strings()))
	}
}

// TestSocketProxyCut: with CutAfter(2) the proxy forwards the second
// mutating request whole, the backend sees its client go away while it
// handles it, the client gets no answer, and nothing reaches the backend
// afterwards.
func TestSocketProxyCut(t *testing.T) {
	dir := t.TempDir()
	backend := filepath.Join(dir, "backend.socket")
	ln, err := net.Listen("unix", backend)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	cancelled := make(chan string, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		mu.Unlock()
		if r.Method == http.MethodPost && string(body) == "second" {
			select {
			case <-r.Context().Done():
				cancelled <- string(body)
			case <-time.After(5 * time.Second):
			}
		}
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	log := &RequestLog{}
	p, err := NewSocketProxy(backend, filepath.Join(dir, "proxy.socket"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	p.CutAfter(2, 0)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p.Path)
	}}}
	do := func(method, body string) error {
		req, _ := http.NewRequest(method, "http://unix.socket/1.0/networks", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.ReadAll(resp.Body)
		return resp.Body.Close()
	}
	for _, step := range []struct {
		method, body string
		fails        bool
	}{
		{http.MethodGet, "", false},
		{http.MethodPost, "first", false},
		{http.MethodGet, "", false},
		{http.MethodPost, "second", true},
		{http.MethodGet, "", true},
		{http.MethodPut, "third", true},
	} {
		if err := do(step.method, step.body); (err != nil) != step.fails {
			t.Errorf("%s %q: error %v, want failure %v", step.method, step.body, err, step.fails)
		}
	}
	select {
	case got := <-cancelled:
		if got != "second" {
			t.Errorf("cancelled %q", got)
		}
	case <-time.After(3 * time.Second):
		t.Error("the backend never saw its client go away during the cut request")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /1.0/networks ", "POST /1.0/networks first", "GET /1.0/networks ", "POST /1.0/networks second"}
	if !slices.Equal(seen, want) {
		t.Errorf("backend saw %q, want %q", seen, want)
	}
	if p.Mutations() != 2 || p.Cut() != "POST /1.0/networks" {
		t.Errorf("mutations %d, cut %q", p.Mutations(), p.Cut())
	}
}

// TestMutating: the requests a crash test may cut are those that can
// change something; the plan's read-only database query is not one of
// them, so it does not shift the cut points.
func TestMutating(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           bool
	}{
		{http.MethodGet, "/1.0/networks?recursion=1", false},
		{http.MethodHead, "/1.0", false},
		{http.MethodOptions, "/1.0", false},
		{http.MethodPost, "/internal/sql", false},
		{http.MethodPost, "/1.0/networks", true},
		{http.MethodPost, "/internal/sql/extra", true},
		{http.MethodPut, "/internal/sql", true},
		{http.MethodPatch, "/1.0/instances/a", true},
		{http.MethodDelete, "/1.0/projects/p", true},
	} {
		r, err := http.NewRequest(tc.method, "http://incus"+tc.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := mutating(r); got != tc.want {
			t.Errorf("%s %s: mutating %v, want %v", tc.method, tc.target, got, tc.want)
		}
	}
}
