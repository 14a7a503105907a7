package incusx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"sync"
	"time"
)

// SocketProxy is a unix-socket proxy in front of an Incus socket that
// records every request it forwards, with the time its answer took (SPEC.md §16 #63 counts a plan's
// requests "by a proxy on the socket"). Point a process at it with
// INCUS_SOCKET=<Path>, or Connect with Options.Socket; websocket upgrades
// (events, exec) are forwarded too.
//
// With CutAfter, it also plays a lost connection for crash-consistency
// tests: it forwards the k-th mutating request (any method but GET, HEAD
// and OPTIONS, and not the read-only POST /internal/sql), cuts it as soon as the request is written to Incus, and
// closes every connection of the client from then on.
type SocketProxy struct {
	// Path is the socket the proxy listens on.
	Path string
	log  *RequestLog
	rp   *httputil.ReverseProxy
	srv  *http.Server
	done chan error

	mu        sync.Mutex
	mutations int           // mutating requests seen
	cutAfter  int           // 0: never cut
	cutDelay  time.Duration // how long the cut request runs before it is aborted
	cut       string        // the request that was cut, "" before
}

// NewSocketProxy listens on listenPath and forwards to the Incus socket
// target, recording each request in log as "METHOD /1.0/…?query".
func NewSocketProxy(target, listenPath string, log *RequestLog) (*SocketProxy, error) {
	ln, err := net.Listen("unix", listenPath)
	if err != nil {
		return nil, fmt.Errorf("starting the Incus socket proxy: %w", err)
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", target)
	}
	p := &SocketProxy{Path: listenPath, log: log, done: make(chan error, 1)}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			log.Add(r.In.Method, r.In.URL.RequestURI())
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "unix.socket"
			r.Out.Host = "unix.socket"
		},
		Transport:     &http.Transport{DialContext: dial, DisableKeepAlives: true},
		FlushInterval: -1,
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 30 * time.Second}
	go func() { p.done <- p.srv.Serve(ln) }()
	return p, nil
}

// CutAfter arms the cut after k mutating requests (k ≥ 1), counted from
// the proxy's start; k = 0 disarms it. The k-th request is aborted delay
// after it is written to Incus (at once with 0), or when its answer comes
// if that is sooner; its answer never reaches the client. A delay lets a
// slow request (a bridge create) get past its first steps in Incus
// before its client goes away, while a quick one ends normally unseen.
func (p *SocketProxy) CutAfter(k int, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter, p.cutDelay = k, delay
}

// Mutations returns how many mutating requests the proxy has seen.
func (p *SocketProxy) Mutations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mutations
}

// Cut returns the request that was cut, "METHOD /1.0/…", or "" when none
// was.
func (p *SocketProxy) Cut() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// mutating reports whether a request changes something in Incus: any
// method but GET, HEAD and OPTIONS, except POST /internal/sql, which
// anklume sends only with SELECT statements (DatabaseReader) and Incus
// runs in a transaction it rolls back.
func mutating(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return !(r.Method == http.MethodPost && r.URL.Path == "/internal/sql")
}

// serve forwards one request, or plays the cut.
func (p *SocketProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.cut != "" {
		p.mu.Unlock()
		p.log.Add(r.Method, r.URL.RequestURI())
		hangUp(w)
		return
	}
	last, delay := false, p.cutDelay
	if mutating(r) {
		p.mutations++
		if p.cutAfter > 0 && p.mutations == p.cutAfter {
			last = true
			p.cut = r.Method + " " + r.URL.RequestURI()
		}
	}
	p.mu.Unlock()
	if !last {
		start := time.Now()
		p.rp.ServeHTTP(w, r)
		p.log.Timed(r.Method, r.URL.RequestURI(), time.Since(start))
		return
	}
	// Forward the request and abort it delay after it is written: Incus
	// gets it whole, then sees its client go away while it handles it.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if delay <= 0 {
				cancel()
				return
			}
			time.AfterFunc(delay, cancel)
		},
	})
	p.rp.ServeHTTP(discard{}, r.WithContext(ctx))
	hangUp(w)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// discard is a ResponseWriter that drops the response of a cut request.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// Close stops the proxy and removes its socket.
func (p *SocketProxy) Close() error {
	err := p.srv.Close()
	if serveErr := <-p.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("stopping the Incus socket proxy: %w", err)
	}
	return nil
}
