package incusx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
)

// SocketProxy is a unix-socket proxy in front of an Incus socket that
// records every request it forwards (SPEC.md §16 #63 counts a plan's
// requests "by a proxy on the socket"). Point a process at it with
// INCUS_SOCKET=<Path>, or Connect with Options.Socket; websocket upgrades
// (events, exec) are forwarded too.
type SocketProxy struct {
	// Path is the socket the proxy listens on.
	Path string
	log  *RequestLog
	srv  *http.Server
	done chan error
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
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			log.Add(r.In.Method, r.In.URL.RequestURI())
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "unix.socket"
			r.Out.Host = "unix.socket"
		},
		Transport:     &http.Transport{DialContext: dial, DisableKeepAlives: true},
		FlushInterval: -1,
	}
	p := &SocketProxy{Path: listenPath, log: log, done: make(chan error, 1),
		srv: &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second}}
	go func() { p.done <- p.srv.Serve(ln) }()
	return p, nil
}

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
