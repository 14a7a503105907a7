package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// timedCall is one request one anklume process sent through its proxy:
// the order stamps at which it was sent and answered (one counter shared
// by every proxy), the project name of a POST /1.0/projects, and the
// status of the answer.
type timedCall struct {
	proc       int
	sent, done int64
	method     string
	path       string
	project    string
	status     int
}

// timeline records the requests of several processes in one order.
type timeline struct {
	clock atomic.Int64
	mu    sync.Mutex
	calls []*timedCall
}

// proxy starts a unix-socket proxy to the Incus socket for process proc
// and returns its path.
func (tl *timeline) proxy(t *testing.T, proc int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "incus.socket")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	target := incusSocket()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", target)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = "http", "unix.socket", "unix.socket"
		},
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &timedCall{proc: proc, method: r.Method, path: r.URL.RequestURI()}
		if r.Method == http.MethodPost && r.URL.Path == "/1.0/projects" {
			body, _ := io.ReadAll(r.Body)
			var p struct{ Name string }
			_ = json.Unmarshal(body, &p)
			c.project = p.Name
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		c.sent = tl.clock.Add(1)
		rp.ServeHTTP(rec, r)
		c.done = tl.clock.Add(1)
		c.status = rec.status
		tl.mu.Lock()
		tl.calls = append(tl.calls, c)
		tl.mu.Unlock()
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return path
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over for the upgraded requests that go
// through the proxy (the event and exec websockets of an apply): without
// it the proxy answers them with an error and the apply falls back.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("the response writer %T cannot be hijacked", s.ResponseWriter)
	}
	return h.Hijack()
}

// Unwrap gives http.ResponseController the writer underneath.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// lockCall reports whether c is a request of the lock itself: its create,
// its rename to a tombstone, or a request on a tombstone.
func lockCall(c *timedCall) bool {
	return c.project == "anklume-lock" || strings.HasPrefix(c.path, "/1.0/projects/anklume-lock")
}

// TestApplyScenarioTen starts ten applies of the same infrastructure at
// once, each through its own recording proxy. From the requests in one
// order: a process holds the lock from the answer to its successful create
// of anklume-lock to the rename that releases it; those spans never
// overlap; every change a process makes to Incus lies inside its own span;
// a process that never held the lock made no change and failed with the
// lock message; and the infrastructure ends complete (plan empty, every
// machine running at its address).
func TestApplyScenarioTen(t *testing.T) {
	infra := scName(t, "sc")
	psot := scPSOT(infra)
	dirs := []string{scSetup(t, infra, psot)}
	for len(dirs) < 10 {
		dirs = append(dirs, writePSOT(t, psot))
	}
	bin := binary(t)
	before := lockProjects(t)
	var tl timeline
	rs := make([]result, len(dirs))
	cmds := make([]*exec.Cmd, len(dirs))
	for i, dir := range dirs {
		cmds[i] = scCommand(t, bin, dir, []string{"INCUS_SOCKET=" + tl.proxy(t, i)}, scApplyArgs("--no-nftables")...)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, cmd := range cmds {
		wg.Go(func() {
			var out, errOut strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errOut
			<-start
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				rs[i].code = ee.ExitCode()
			case err != nil:
				rs[i].code = -1
				errOut.WriteString(err.Error())
			}
			rs[i].out, rs[i].errOut = out.String(), errOut.String()
		})
	}
	close(start)
	wg.Wait()

	// A rename of anklume-lock before a process holds the lock is a
	// takeover (of a stale lock, or of the lock project of an older
	// anklume); after, it is the release.
	type span struct{ from, to int64 }
	spans := map[int]span{}
	changes := map[int][]*timedCall{}
	slices.SortFunc(tl.calls, func(a, b *timedCall) int { return cmp.Compare(a.sent, b.sent) })
	for _, c := range tl.calls {
		s, held := spans[c.proc]
		switch {
		case c.method == http.MethodPost && c.project == "anklume-lock" && c.status/100 == 2:
			spans[c.proc] = span{from: c.done}
		case held && s.to == 0 && c.method == http.MethodPost && c.path == "/1.0/projects/anklume-lock":
			s.to = c.sent
			spans[c.proc] = s
		case c.method != http.MethodGet && !lockCall(c):
			changes[c.proc] = append(changes[c.proc], c)
		}
	}
	var timelineText strings.Builder
	for i := range dirs {
		s, held := spans[i]
		fmt.Fprintf(&timelineText, "run %d: exit %d, held %v [%d, %d], %d changes\n", i, rs[i].code, held, s.from, s.to, len(changes[i]))
	}
	t.Logf("holder timeline:\n%s", timelineText.String())
	winners := 0
	for i := range dirs {
		s, held := spans[i]
		if !held {
			if rs[i].code != 1 || rs[i].out != "" || !lockHeld.MatchString(rs[i].errOut) {
				t.Errorf("run %d never held the lock but: exit %d\n%s\n%s", i, rs[i].code, rs[i].out, rs[i].errOut)
			}
			if len(changes[i]) > 0 {
				t.Errorf("run %d changed Incus without the lock: %s %s", i, changes[i][0].method, changes[i][0].path)
			}
			continue
		}
		winners++
		if s.from == 0 || s.to == 0 || s.to < s.from {
			t.Errorf("run %d: lock span [%d, %d] incomplete", i, s.from, s.to)
		}
		if rs[i].code != 0 || !strings.Contains(rs[i].out, "Apply complete: ") {
			t.Errorf("run %d held the lock but: exit %d\n%s\n%s", i, rs[i].code, rs[i].out, rs[i].errOut)
		}
		for _, c := range changes[i] {
			if c.sent < s.from || c.done > s.to {
				t.Errorf("run %d: %s %s at [%d, %d] outside its lock span [%d, %d]", i, c.method, c.path, c.sent, c.done, s.from, s.to)
			}
		}
		for j, o := range spans {
			if j != i && o.from < s.to && s.from < o.to {
				t.Errorf("runs %d [%d, %d] and %d [%d, %d] held the lock at the same time", i, s.from, s.to, j, o.from, o.to)
			}
		}
	}
	if winners == 0 {
		t.Fatal("no run held the lock")
	}
	scRunning(t, infra)
	scPlanEmpty(t, dirs[0], "after ten concurrent applies")
	for _, n := range strings.Fields(lockProjects(t)) {
		if !strings.Contains(before, n+"\n") && !strings.HasPrefix(n, "anklume-lock-old-") {
			t.Errorf("lock project %s left after the runs (a release deletes its tombstone)", n)
		}
	}
}

// lockProjects lists the projects named anklume-lock*.
func lockProjects(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, n := range strings.Fields(mustRun(t, "", "incus", "project", "list", "-f", "csv", "-c", "n")) {
		if strings.HasPrefix(n, "anklume-lock") {
			b.WriteString(n + "\n")
		}
	}
	return b.String()
}
