package incusx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// TestNetworksFromDatabaseLive: on the real daemon, the database read
// returns, for every managed network of the default project, exactly what
// GET /1.0/networks?recursion=1 returns (name, description, type, status,
// config, locations, project) but used_by, quotes and semicolons in
// descriptions and values included; and it is one request.
func TestNetworksFromDatabaseLive(t *testing.T) {
	var log RequestLog
	c := realServer(t, &log)
	ctx := context.Background()
	n := newNames(t)
	t.Cleanup(func() { purge(t, c, []string{n.project}, []string{n.network, n.network + "b"}) })
	must := mustOK(t)
	must("create network", c.CreateNetwork(ctx, api.NetworksPost{Name: n.network, Type: "bridge", NetworkPut: api.NetworkPut{
		Description: "it's a \"quoted\"; description",
		Config:      map[string]string{"ipv4.address": n.gateway(), "ipv4.nat": "false", "ipv6.address": "none", "user.anklume.x": "a;b'c"}}}))
	must("create network b", c.CreateNetwork(ctx, api.NetworksPost{Name: n.network + "b", Type: "bridge", NetworkPut: api.NetworkPut{
		Config: map[string]string{"ipv4.address": "none", "ipv6.address": "none"}}}))
	// A profile of another project on the bridge: it is in used_by, which
	// the database read leaves out.
	must("create project", c.CreateProject(ctx, api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{
		Config: api.ConfigMap{"features.profiles": "true"}}}))
	must("profile", c.srv.UseProject(n.project).CreateProfile(api.ProfilesPost{Name: "p", ProfilePut: api.ProfilePut{
		Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": n.network}}}}))
	t.Cleanup(func() { _ = c.srv.UseProject(n.project).DeleteProfile("p") })

	info, err := c.ServerInfo(ctx)
	must("server info", err)
	same := func(when string) {
		t.Helper()
		public, err := c.Networks(ctx)
		must("public list", err)
		log.Reset()
		fromDB, err := c.NetworksFromDatabase(ctx, info.Environment.ServerName, info.Environment.ServerClustered)
		must("database read", err)
		if got := log.Strings(); !slices.Equal(got, []string{"POST /internal/sql"}) {
			t.Errorf("%s: requests: %q", when, got)
		}
		var managed []api.Network
		for _, p := range public {
			if p.Managed {
				p.UsedBy = nil
				managed = append(managed, p)
			}
		}
		if len(managed) < 2 {
			t.Fatalf("%s: public list has %d managed networks", when, len(managed))
		}
		if !reflect.DeepEqual(fromDB, managed) {
			t.Errorf("%s: database read differs from the public list:\n db:  %+v\n api: %+v", when, fromDB, managed)
		}
	}
	same("created")
	// A bridge create cut half-way leaves the server's own row Pending
	// while the network's global state already says Created; the public
	// list reports Pending then, and so must the database read (the
	// repair of an interrupted apply acts on it).
	setNodeState := func(state int) {
		t.Helper()
		_, _, err := c.srv.RawQuery(http.MethodPost, "/internal/sql", map[string]string{"database": "global",
			"query": fmt.Sprintf("UPDATE networks_nodes SET state = %d WHERE network_id = "+
				"(SELECT id FROM networks WHERE name = '%sb')", state, n.network)}, "")
		must("set the node state", err)
	}
	setNodeState(0)
	t.Cleanup(func() { setNodeState(1) })
	if b, _, err := c.srv.GetNetwork(n.network + "b"); err != nil || b.Status != api.NetworkStatusPending {
		t.Fatalf("public status after the node state set to pending: %v %v", b, err)
	}
	same("pending")
}

// TestNetworksFromRows: the rows are turned into networks only when their
// shape is the one expected; any other shape is an error, never a guess.
// The status is the global state in a cluster and the server's own state
// on a single server, as Incus reports it.
func TestNetworksFromRows(t *testing.T) {
	cols := func(n int) []string { return make([]string, n) }
	good := []sqlResult{
		{Columns: cols(7), Rows: [][]any{
			{"a", "", 0.0, 1.0, 1.0, "ipv4.address", "none"},
			{"a", "", 0.0, 1.0, 1.0, "ipv6.address", "none"},
			{"b", "desc", 3.0, 0.0, 2.0, nil, nil},
			{"c", "", 9.0, 7.0, nil, nil, nil},
			{"d", "", 0.0, 1.0, 0.0, nil, nil},
		}},
		{Columns: cols(2), Rows: [][]any{{"a", "m1"}, {"a", "m2"}, {"b", "m1"}}},
	}
	net := func(name, typ, status, desc string, locs []string, cfg map[string]string) api.Network {
		return api.Network{Name: name, Managed: true, Type: typ, Status: status, Project: "default", Locations: locs,
			NetworkPut: api.NetworkPut{Description: desc, Config: cfg}}
	}
	none := map[string]string{"ipv4.address": "none", "ipv6.address": "none"}
	for _, tc := range []struct {
		clustered bool
		status    []string // of a, b, c, d
	}{
		{true, []string{api.NetworkStatusCreated, api.NetworkStatusPending, api.NetworkStatusUnknown, api.NetworkStatusCreated}},
		{false, []string{api.NetworkStatusCreated, api.NetworkStatusErrored, api.NetworkStatusUnknown, api.NetworkStatusPending}},
	} {
		nets, err := networksFromRows(good, tc.clustered)
		if err != nil {
			t.Fatal(err)
		}
		want := []api.Network{
			net("a", "bridge", tc.status[0], "", []string{"m1", "m2"}, none),
			net("b", "ovn", tc.status[1], "desc", []string{"m1"}, map[string]string{}),
			net("c", "", tc.status[2], "", []string{}, map[string]string{}),
			net("d", "bridge", tc.status[3], "", []string{}, map[string]string{}),
		}
		if !reflect.DeepEqual(nets, want) {
			t.Errorf("clustered %v:\ngot  %+v\nwant %+v", tc.clustered, nets, want)
		}
	}
	for name, res := range map[string][]sqlResult{
		"one result":         good[:1],
		"extra column":       {{Columns: cols(8)}, good[1]},
		"numeric name":       {{Columns: cols(7), Rows: [][]any{{1.0, "", 0.0, 1.0, 1.0, nil, nil}}}, good[1]},
		"fractional type":    {{Columns: cols(7), Rows: [][]any{{"a", "", 0.5, 1.0, 1.0, nil, nil}}}, good[1]},
		"textual node state": {{Columns: cols(7), Rows: [][]any{{"a", "", 0.0, 1.0, "1", nil, nil}}}, good[1]},
		"key without value":  {{Columns: cols(7), Rows: [][]any{{"a", "", 0.0, 1.0, 1.0, "k", nil}}}, good[1]},
		"bad location":       {good[0], {Columns: cols(2), Rows: [][]any{{"a", 1.0}}}},
	} {
		if _, err := networksFromRows(res, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestNetworksFromDatabaseRefused: a connection that is not the local
// socket, and a member name that could leave its quotes, are refused
// before any request.
func TestNetworksFromDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	if _, err := (&Client{}).NetworksFromDatabase(ctx, "m1", true); !errors.Is(err, ErrNotLocal) {
		t.Errorf("remote: %v", err)
	}
	if _, err := (&Client{}).ProjectsFromDatabase(ctx); !errors.Is(err, ErrNotLocal) {
		t.Errorf("remote projects: %v", err)
	}
	if _, err := (&Client{local: true}).NetworksFromDatabase(ctx, "m1'; DELETE FROM networks", true); err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("quoted member: %v", err)
	}
	for v, want := range map[string]bool{"6.0.4": true, "6.23": true, "7.0": false, "": false, "60.1": false} {
		if KnownSchema(v) != want {
			t.Errorf("KnownSchema(%q) = %v", v, !want)
		}
	}
}

// TestProjectsFromDatabaseLive: on the real daemon, the database read of
// the projects equals GET /1.0/projects?recursion=1 but used_by, for a
// project with a quoted, semicolon-laden description and config value
// among them, in one request.
func TestProjectsFromDatabaseLive(t *testing.T) {
	var log RequestLog
	c := realServer(t, &log)
	ctx := context.Background()
	n := newNames(t)
	t.Cleanup(func() { purge(t, c, []string{n.project}, nil) })
	if err := c.CreateProject(ctx, api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{
		Description: "it's; \"x\"", Config: api.ConfigMap{"features.profiles": "true", "user.anklume.x": "a;b'c"}}}); err != nil {
		t.Fatal(err)
	}
	public, err := c.Projects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log.Reset()
	fromDB, err := c.ProjectsFromDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := log.Strings(); !slices.Equal(got, []string{"POST /internal/sql"}) {
		t.Errorf("requests: %q", got)
	}
	for i := range public {
		public[i].UsedBy = nil
	}
	if len(public) < 2 || !reflect.DeepEqual(fromDB, public) {
		t.Errorf("database read differs from the public list:\n db:  %+v\n api: %+v", fromDB, public)
	}
}

// TestProjectsFromRows: rows in, projects out; another shape is an error.
func TestProjectsFromRows(t *testing.T) {
	got, err := projectsFromRows([]sqlResult{{Columns: make([]string, 4), Rows: [][]any{
		{"a", "", "features.images", "false"}, {"a", "", "user.x", "1"}, {"b", "d", nil, nil}}}})
	want := []api.Project{
		{Name: "a", ProjectPut: api.ProjectPut{Config: map[string]string{"features.images": "false", "user.x": "1"}}},
		{Name: "b", ProjectPut: api.ProjectPut{Description: "d", Config: map[string]string{}}},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v", got, err)
	}
	for name, res := range map[string][]sqlResult{
		"no result":     nil,
		"three columns": {{Columns: make([]string, 3)}},
		"numeric value": {{Columns: make([]string, 4), Rows: [][]any{{"a", "", "k", 1.0}}}},
	} {
		if _, err := projectsFromRows(res); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
