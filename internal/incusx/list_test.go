package incusx

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// cannedSocket serves fixed answers on a unix socket, by path.
func cannedSocket(t *testing.T, answers map[string]struct {
	code int
	body string
}) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "canned.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.RequestURI()]
		if !ok {
			a.code, a.body = http.StatusNotFound, `{"type":"error","error":"not found","error_code":404,"metadata":null}`
		}
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

// TestListMatchesRawQuery: list decodes what the Incus client's RawQuery
// followed by a decode of its metadata gives, and fails with the same
// errors (an error answer, an error answer whose metadata has another
// shape, a body that is not JSON, a truncated one, a metadata of the
// wrong shape), on the same request.
func TestListMatchesRawQuery(t *testing.T) {
	answers := map[string]struct {
		code int
		body string
	}{
		"/1.0/projects?recursion=1":  {200, `{"type":"sync","status":"Success","status_code":200,"metadata":[{"name":"p1","config":{"features.images":"true"}},{"name":"p2"}]}`},
		"/1.0/networks?recursion=1":  {200, `{"type":"sync","status":"Success","status_code":200,"metadata":null}`},
		"/1.0/profiles?recursion=1":  {403, `{"type":"error","error":"not authorized","error_code":403,"metadata":{"x":1}}`},
		"/1.0/instances?recursion=1": {500, `<html>oops</html>`},
		"/1.0/images?recursion=1":    {200, `{"type":"sync","metadata":{"not":"a list"}}`},
		"/1.0/volumes?recursion=1":   {200, `{"type":"sync","metadata":[`},
	}
	c, err := Connect(context.Background(), Options{Socket: cannedSocket(t, answers), ConfigDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"projects", "networks", "profiles", "instances", "images", "volumes", "missing"} {
		path := api.NewURL().Path("1.0", p).WithQuery("recursion", "1")
		var got, want []api.Project
		gerr := c.list(context.Background(), path, &got)
		resp, _, werr := c.srv.RawQuery(http.MethodGet, path.String(), nil, "")
		if werr == nil {
			werr = json.Unmarshal(resp.Metadata, &want)
		}
		// A metadata of the wrong shape is a decoding error in both, worded
		// by encoding/json after the field it was decoding.
		sameText := p != "images"
		if (gerr == nil) != (werr == nil) || (gerr != nil && sameText && gerr.Error() != werr.Error()) {
			t.Errorf("%s: error %v, RawQuery's %v", p, gerr, werr)
		}
		if code, ok := api.StatusErrorMatch(werr); ok {
			if gcode, _ := api.StatusErrorMatch(gerr); gcode != code {
				t.Errorf("%s: status %d, RawQuery's %d", p, gcode, code)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, RawQuery's %+v", p, got, want)
		}
	}
}
