package incusx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
)

// DatabaseReader lists the managed networks of the default project and
// the projects without their used_by, from the Incus database.
//
// Why: Incus (6.0, and 6.23 still) computes used_by for every network that
// GET /1.0/networks?recursion=1 returns, and for each network it walks
// every profile of every project (three queries each) and every instance.
// The list costs networks × (profiles + instances): 65–90 s for a lab of
// 100 domains × 3 containers, where the data a plan compares (name,
// description, type, status, config, locations) is a few hundred rows. No
// public read returns a network's config without used_by, so a plan of
// that lab could not be faster than that list.
//
// What: the same rows, read with two SELECT statements in one
// POST /internal/sql request, the endpoint of `incus admin sql global`.
// A SELECT runs in a read transaction that Incus rolls back: nothing is
// written. The endpoint needs the server's edit permission, which the
// local unix socket gives its users (root and the incus-admin group).
//
// Where it is used (reconcile.Observe): on the local unix socket of an
// Incus 6.x server only (KnownSchema), since the tables are
// Incus's internals, not its API. Any error (an unknown column after an
// upgrade, a refused request) makes the caller fall back to the public
// list, which then costs one more request. A live test compares both
// answers for every network of the daemon and of the test cluster, so an
// Incus whose schema drifts fails that test rather than a user's plan.
type DatabaseReader interface {
	// NetworksFromDatabase returns what Networks returns for the managed
	// networks, UsedBy left nil (unknown), as member sees them (the config
	// keys of every member plus those of member; member is ignored on a
	// single server). clustered is the server's ServerClustered: it picks
	// the status Incus reports (see networksFromRows). Unmanaged host
	// interfaces are not listed.
	NetworksFromDatabase(ctx context.Context, member string, clustered bool) ([]api.Network, error)
	// ProjectsFromDatabase returns what Projects returns, UsedBy left nil
	// (unknown). GET /1.0/projects?recursion=1 computes every project's
	// used_by, which lists every instance, profile, volume and image URL
	// of it: about 0.6 s of the daemon's time on the 300-instance lab,
	// spent while the instance list, which a plan cannot do without,
	// needs the same two cores.
	ProjectsFromDatabase(ctx context.Context) ([]api.Project, error)
}

var _ DatabaseReader = (*Client)(nil)

// KnownSchema reports whether the database of an Incus server of this
// version has the network and project tables DatabaseReader reads: Incus
// 6.x (checked live on 6.0.4). Another major version uses the public
// lists.
func KnownSchema(serverVersion string) bool {
	major, _, _ := strings.Cut(serverVersion, ".")
	return major == "6"
}

// ErrNotLocal is NetworksFromDatabase's answer on a connection that is not
// the local unix socket.
var ErrNotLocal = errors.New("the Incus database is only read on the local unix socket")

// networkTypes is Incus's numbering of network types in its database.
var networkTypes = map[int]string{0: "bridge", 1: "macvlan", 2: "sriov", 3: "ovn", 4: "physical"}

// networkStates is Incus's numbering of network states in its database.
var networkStates = map[int]string{0: api.NetworkStatusPending, 1: api.NetworkStatusCreated, 2: api.NetworkStatusErrored}

// sqlResult is one statement's answer from POST /internal/sql.
type sqlResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// NetworksFromDatabase implements DatabaseReader. The config of a
// network is its rows with no member (global keys) and those of the
// member the request is served for, as GET /1.0/networks does; its
// locations are the members it is defined on, sorted by name (Incus
// lists them in no set order; "none" on a single server, as there).
func (c *Client) NetworksFromDatabase(ctx context.Context, member string, clustered bool) ([]api.Network, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(err, "listing", "networks", "", "")
	}
	if !c.local {
		return nil, ErrNotLocal
	}
	// Incus splits the query on ";" and the text is SQL: the member name
	// (from GET /1.0) goes in quoted, and a name that could escape its
	// quotes is not sent at all.
	if strings.ContainsAny(member, "';\\\x00") {
		return nil, fmt.Errorf("listing networks: member name %q not usable in a query", member)
	}
	self := `(SELECT id FROM nodes WHERE name = '` + member + `' OR (SELECT count(*) FROM nodes) = 1)`
	query := `SELECT n.name, n.description, n.type, n.state, ` +
		`(SELECT nn.state FROM networks_nodes nn WHERE nn.network_id = n.id AND nn.node_id = ` + self + `), ` +
		`c.key, c.value FROM networks n ` +
		`JOIN projects p ON p.id = n.project_id ` +
		`LEFT JOIN networks_config c ON c.network_id = n.id AND (c.node_id IS NULL OR c.node_id = ` + self + `) ` +
		`WHERE p.name = 'default' ORDER BY n.name, c.key;` +
		`SELECT n.name, d.name FROM networks n JOIN projects p ON p.id = n.project_id ` +
		`JOIN networks_nodes nn ON nn.network_id = n.id JOIN nodes d ON d.id = nn.node_id ` +
		`WHERE p.name = 'default' ORDER BY n.name, d.name`
	res, err := c.sql(query)
	if err != nil {
		return nil, wrap(err, "listing", "networks from the Incus database", "", "")
	}
	nets, err := networksFromRows(res, clustered)
	return nets, wrap(err, "listing", "networks from the Incus database", "", "")
}

// ProjectsFromDatabase implements DatabaseReader.
func (c *Client) ProjectsFromDatabase(ctx context.Context) ([]api.Project, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(err, "listing", "projects", "", "")
	}
	if !c.local {
		return nil, ErrNotLocal
	}
	res, err := c.sql(`SELECT p.name, p.description, c.key, c.value FROM projects p ` +
		`LEFT JOIN projects_config c ON c.project_id = p.id ORDER BY p.name, c.key`)
	if err != nil {
		return nil, wrap(err, "listing", "projects from the Incus database", "", "")
	}
	projects, err := projectsFromRows(res)
	return projects, wrap(err, "listing", "projects from the Incus database", "", "")
}

// sql runs read-only statements (SELECT; separated by ";") on the global
// database with one POST /internal/sql and returns one result each.
func (c *Client) sql(query string) ([]sqlResult, error) {
	body := map[string]string{"database": "global", "query": query}
	resp, _, err := c.srv.RawQuery(http.MethodPost, "/internal/sql", body, "")
	if err != nil {
		return nil, err
	}
	var batch struct {
		Results []sqlResult `json:"Results"`
	}
	if err := json.Unmarshal(resp.Metadata, &batch); err != nil {
		return nil, err
	}
	return batch.Results, nil
}

// projectsFromRows builds the projects from the answer of
// ProjectsFromDatabase's statement; any unexpected shape is an error.
func projectsFromRows(res []sqlResult) ([]api.Project, error) {
	if len(res) != 1 || len(res[0].Columns) != 4 {
		return nil, errors.New("unexpected answer shape")
	}
	var out []api.Project
	for _, r := range res[0].Rows {
		name, ok1 := r[0].(string)
		desc, ok2 := r[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected project row %v", r)
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, api.Project{Name: name, ProjectPut: api.ProjectPut{Description: desc, Config: map[string]string{}}})
		}
		if r[2] == nil { // a project with no config row
			continue
		}
		key, ok1 := r[2].(string)
		value, ok2 := r[3].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected config row %v", r)
		}
		out[len(out)-1].Config[key] = value
	}
	return out, nil
}

// networksFromRows builds the networks from the answers of the two
// statements of NetworksFromDatabase. Any unexpected shape is an error,
// never a guess.
//
// The status is the one GET /1.0/networks?recursion=1 reports. In a
// cluster that is the network's global state. On a single server it is
// the state of the server's own row (Unknown when it has none): Incus
// marks the global state Created as soon as it inserts the network and
// the server's row only once the bridge is up, so a create cut half-way
// reads Pending there, which is what the repair of an interrupted apply
// acts on. The one status not in the database is Unavailable, which
// incusd keeps in memory for a created bridge that failed to start; such
// a bridge reads Created here, and a plan treats both alike (only Pending
// and Errored mean a half-made bridge).
func networksFromRows(res []sqlResult, clustered bool) ([]api.Network, error) {
	if len(res) != 2 {
		return nil, fmt.Errorf("%d results, want 2", len(res))
	}
	for i, want := range []int{7, 2} {
		if len(res[i].Columns) != want {
			return nil, fmt.Errorf("statement %d: %d columns, want %d", i+1, len(res[i].Columns), want)
		}
	}
	byName := map[string]*api.Network{}
	for _, r := range res[0].Rows {
		name, ok1 := r[0].(string)
		desc, ok2 := r[1].(string)
		typ, ok3 := sqlInt(r[2])
		state, ok4 := sqlInt(r[3])
		if !clustered {
			state, ok4 = -1, true // no row of this server: Unknown
			if r[4] != nil {
				state, ok4 = sqlInt(r[4])
			}
		}
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("unexpected network row %v", r)
		}
		n := byName[name]
		if n == nil {
			n = &api.Network{Name: name, Managed: true, Type: networkTypes[typ], Status: networkStates[state],
				Project: DefaultProject}
			n.Description = desc
			n.Config = map[string]string{}
			n.Locations = []string{}
			if n.Status == "" {
				n.Status = api.NetworkStatusUnknown
			}
			byName[name] = n
		}
		if r[5] == nil { // a network with no config row
			continue
		}
		key, ok1 := r[5].(string)
		value, ok2 := r[6].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected config row %v", r)
		}
		n.Config[key] = value
	}
	for _, r := range res[1].Rows {
		name, ok1 := r[0].(string)
		member, ok2 := r[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected location row %v", r)
		}
		if n := byName[name]; n != nil {
			n.Locations = append(n.Locations, member)
		}
	}
	out := make([]api.Network, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, *byName[name])
	}
	return out, nil
}

// sqlInt reads an integer column, which JSON gives as a float64.
func sqlInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}
