package incusx

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSocketProxyForwardsAndRecords(t *testing.T) {
	dir := t.TempDir()
	backend := filepath.Join(dir, "backend.socket")
	ln, err := net.Listen("unix", backend)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
