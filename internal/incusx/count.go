package incusx

import (
	"fmt"
	"net/http"

	incus "github.com/lxc/incus/v6/client"
)

// countingTransport records each request in a RequestLog, then sends it.
// It implements the Incus client's HTTPTransporter, whose Transport method
// the client needs to wait on operations.
type countingTransport struct {
	next http.RoundTripper
	base *http.Transport
	log  *RequestLog
}

// CountingTransport wraps the transport of an Incus client's HTTP client so
// that every request is recorded in log as "METHOD /1.0/…?sorted-query"
// (SPEC.md §16 #63). rt must be an *http.Transport or an
// incus.HTTPTransporter, as the Incus client builds them.
func CountingTransport(rt http.RoundTripper, log *RequestLog) (incus.HTTPTransporter, error) {
	t := &countingTransport{next: rt, log: log}
	switch b := rt.(type) {
	case *http.Transport:
		t.base = b
	case incus.HTTPTransporter:
		t.base = b.Transport()
	default:
		return nil, fmt.Errorf("counting requests: unexpected HTTP transport %T", rt)
	}
	return t, nil
}

// RoundTrip implements http.RoundTripper.
func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.log.Add(req.Method, req.URL.RequestURI())
	return t.next.RoundTrip(req)
}

// Transport implements incus.HTTPTransporter.
func (t *countingTransport) Transport() *http.Transport { return t.base }
