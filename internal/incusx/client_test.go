package incusx

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// writeIncusConfig writes an Incus client configuration with the given
// remotes block and returns its directory.
func writeIncusConfig(t *testing.T, remotes string) string {
	t.Helper()
	dir := t.TempDir()
	conf := "default-remote: local\nremotes:\n" + remotes
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// silentSocket listens on a unix socket and closes every connection at
// once: Connect's probe passes, every request fails.
func silentSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "silent.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return sock
}

func TestConnectSendsNoRequestAndWrapsErrors(t *testing.T) {
	sock := silentSocket(t)
	log := &RequestLog{}
	c, err := Connect(context.Background(), Options{Socket: sock, ConfigDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatalf("Connect on the unix socket sends no request, so it cannot fail here: %v", err)
	}
	_, err = c.ServerInfo(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "reading server information: ") {
		t.Errorf("error = %v", err)
	}
	err = c.CreateNetwork(context.Background(), netPost("net-work"))
	if err == nil || !strings.HasPrefix(err.Error(), `creating network "net-work": `) {
		t.Errorf("error = %v, want it to say what was being done", err)
	}
	if got := log.Strings(); len(got) != 2 || got[0] != "GET /1.0" || got[1] != "POST /1.0/networks" {
		t.Errorf("requests = %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.DeleteNetwork(ctx, "x"); err == nil || log.Len() != 2 {
		t.Errorf("a canceled call: %v, %d requests", err, log.Len())
	}
}

func TestConnectRemotes(t *testing.T) {
	dir := writeIncusConfig(t, `  local:
    addr: unix://
    public: false
  mirror:
    addr: https://mirror.example
    protocol: simplestreams
    public: true
`)
	c, err := Connect(context.Background(), Options{ConfigDir: dir, Socket: silentSocket(t)})
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.ResolveImage("mirror:debian/13")
	if err != nil || src.Server != "https://mirror.example" || src.Protocol != "simplestreams" || src.Mode != "pull" || src.Alias != "debian/13" {
		t.Errorf("mirror:debian/13 -> %+v, %v", src, err)
	}
	if src, err := c.ResolveImage("images:debian/13"); err != nil || src.Server != ImagesRemoteAddr {
		t.Errorf(`"images" is built in even when the configuration omits it: %+v, %v`, src, err)
	}
	_, err = Connect(context.Background(), Options{ConfigDir: dir, Remote: "nope"})
	if err == nil || err.Error() != `connecting to Incus remote "nope": no such remote in the Incus client configuration` {
		t.Errorf("unknown remote: %v", err)
	}
}

// TestConnectUnixRemote uses a remote of the client configuration whose
// address is the daemon's socket (--remote with a unix remote).
func TestConnectUnixRemote(t *testing.T) {
	realServer(t, &RequestLog{})
	dir := writeIncusConfig(t, "  here:\n    addr: unix://"+socketPath()+"\n    protocol: incus\n    public: false\n")
	log := &RequestLog{}
	c, err := Connect(context.Background(), Options{ConfigDir: dir, Remote: "here", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := log.Strings(); len(got) != 1 || got[0] != "GET /1.0" {
		t.Errorf("requests = %v", got)
	}
	// ServerInfo reads what the client's GetServer reads.
	want, _, err := c.srv.GetServer()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(info.APIExtensions, want.APIExtensions) || info.Environment.ServerVersion != want.Environment.ServerVersion ||
		info.Environment.ServerClustered != want.Environment.ServerClustered || len(info.APIExtensions) < 100 {
		t.Errorf("ServerInfo %+v\nGetServer %+v", info.Environment, want.Environment)
	}
}

func TestCountingTransportRejectsUnknownTransports(t *testing.T) {
	_, err := CountingTransport(roundTripFunc(nil), &RequestLog{})
	if err == nil || !strings.Contains(err.Error(), "unexpected HTTP transport") {
		t.Errorf("error = %v", err)
	}
	if rt, err := CountingTransport(&http.Transport{}, &RequestLog{}); err != nil || rt.Transport() == nil {
		t.Errorf("an *http.Transport is accepted: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func netPost(name string) api.NetworksPost {
	return api.NetworksPost{Name: name, Type: "bridge"}
}
