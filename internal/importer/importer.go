// Package importer implements `anklume import` (SPEC.md §11): it reads the
// live Incus state with GET requests only, rebuilds the PSOT that produced
// the anklume-owned objects (and, best effort, domains for the projects
// anklume does not own), and renders it as YAML with the writer of §6.4.
//
// Read does the reading; Import is pure: it takes the observed state and
// returns the document and its warnings, so that the round trip
// apply → import → plan can be tested on the in-memory fake.
package importer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/reconcile"
)

// DefaultOutput is the file import writes without -o.
const DefaultOutput = "infra.imported.yml"

// DefaultInfra is project_name when Incus holds no owned object (§11.1).
const DefaultInfra = "imported-infra"

// Modeline is the schema comment every generated PSOT starts with.
const Modeline = "# yaml-language-server: $schema=.anklume/infra.schema.json"

// Defaults of SPEC.md §2.4 that import compares against.
const (
	defaultImage              = "images:debian/13"
	defaultPool               = "default"
	defaultSharedVolumesBase  = "/srv/anklume/shares"
	defaultPersistentDataBase = "/srv/anklume/data"
	defaultZoneBase           = 100
	defaultBaseSubnet         = "10.100"
	semiTrusted               = "semi-trusted"
	firewallDescription       = "Centralized firewall VM (auto-created by anklume)"
	firewallRole              = "firewall_router"
	firewallDomain            = "anklume"
)

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	digitsRe = regexp.MustCompile(`^[0-9]+$`)
)

// zoneOffset is ZONE_OFFSET of SPEC.md §4.2; ok is false for an unknown
// trust level.
func zoneOffset(trust string) (int, bool) {
	switch trust {
	case "admin":
		return 0, true
	case "trusted":
		return 10, true
	case semiTrusted:
		return 20, true
	case "untrusted":
		return 40, true
	case "disposable":
		return 50, true
	}
	return 0, false
}

// State is what import reads: the observed state of §9.1 with the custom
// volumes of every pool, plus the first global IPv4 address of eth0 of
// the instances whose eth0 device names no address.
type State struct {
	*reconcile.Observed
	// Addresses maps "<project>/<instance>" to an address from the
	// instance state (§11 rule 5); filled only when the server can read
	// instance states (see StateReader).
	Addresses map[string]string
}

// StateReader is implemented by servers that can read an instance's live
// state (GET /1.0/instances/<name>/state). It is optional: without it,
// unowned instances keep only the address of their eth0 device.
type StateReader interface {
	InstanceState(ctx context.Context, project, name string) (*api.InstanceState, error)
}

// Read reads the live state with GET requests only: the reads of §9.1,
// then the custom volumes of every pool not already listed, then, when
// srv is a StateReader, the state of each instance of a project that
// anklume does not own whose eth0 device has no ipv4.address.
func Read(ctx context.Context, srv incusx.Server) (*State, error) {
	obs, err := reconcile.Observe(ctx, srv, reconcile.ObserveOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range obs.Pools {
		if _, ok := obs.Volumes[p.Name]; ok {
			continue
		}
		vols, err := srv.StorageVolumes(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		obs.Volumes[p.Name] = vols
	}
	st := &State{Observed: obs, Addresses: map[string]string{}}
	sr, ok := srv.(StateReader)
	if !ok {
		sl, ok := srv.(incusx.StateLister)
		if !ok {
			return st, nil
		}
		sr = &listedStates{lister: sl}
	}
	owned := map[string]bool{}
	for _, p := range obs.Projects {
		if p.Config[incus.KeyManaged] == "true" {
			owned[p.Name] = true
		}
	}
	for _, in := range obs.Instances {
		if owned[in.Project] || in.Project == incus.DefaultProject || lock.IsLockProject(in.Project) ||
			eth0Address(&in) != "" || in.Status != "Running" {
			continue
		}
		s, err := sr.InstanceState(ctx, in.Project, in.Name)
		if err != nil {
			return nil, err
		}
		if a := stateIPv4(s); a != "" {
			st.Addresses[in.Project+"/"+in.Name] = a
		}
	}
	return st, nil
}

// listedStates is a StateReader over incusx.StateLister: one
// GET /1.0/instances?all-projects=true&recursion=2, made on first use,
// answers every instance.
type listedStates struct {
	lister incusx.StateLister
	states map[string]*api.InstanceState
}

// InstanceState returns the listed state of project/name (nil if absent).
func (l *listedStates) InstanceState(ctx context.Context, project, name string) (*api.InstanceState, error) {
	if l.states == nil {
		all, err := l.lister.InstancesWithState(ctx)
		if err != nil {
			return nil, err
		}
		l.states = make(map[string]*api.InstanceState, len(all))
		for i := range all {
			l.states[all[i].Project+"/"+all[i].Name] = all[i].State
		}
	}
	return l.states[project+"/"+name], nil
}

// stateIPv4 returns the first global IPv4 address of eth0 in s.
func stateIPv4(s *api.InstanceState) string {
	if s == nil {
		return ""
	}
	for _, a := range s.Network["eth0"].Addresses {
		if a.Family == "inet" && a.Scope == "global" {
			return a.Address
		}
	}
	return ""
}

// eth0Address returns the ipv4.address of the instance's eth0 device, or
// of its expanded eth0 device.
func eth0Address(in *api.Instance) string {
	if d, ok := in.Devices["eth0"]; ok && d["ipv4.address"] != "" {
		return d["ipv4.address"]
	}
	return in.ExpandedDevices["eth0"]["ipv4.address"]
}

// Options are the import flags of SPEC.md §11.
type Options struct {
	// Infra selects the infrastructure (--infra) when several exist.
	Infra string
	// Projects limits the import to these Incus projects (--project).
	Projects []string
	// OnlyAnklume skips the projects anklume does not own.
	OnlyAnklume bool
	// Prefix is the nesting prefix the current level produces ("" at
	// level 0 or without nesting): owned names that lack it make import
	// write nesting_prefix: false.
	Prefix string
}

// Result is an imported PSOT.
type Result struct {
	// ProjectName is the project_name written.
	ProjectName string
	// Doc is the document body (format_version first).
	Doc yamlw.Map
	// Warnings are the messages of §11 without the "warning: " prefix,
	// in the order they arose.
	Warnings []string
	// Domains, Machines and Policies count what was written.
	Domains, Machines, Policies int
}

// YAML returns the file: a header comment, the modeline, then Doc.
func (r *Result) YAML() []byte {
	head := "# Imported from Incus by anklume import (infrastructure " + oneLine(r.ProjectName) + ").\n" +
		"# Review it before applying: settings that leave no trace in Incus are not recovered.\n" +
		Modeline + "\n"
	return append([]byte(head), yamlw.Marshal(r.Doc)...)
}

// oneLine keeps a comment on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// domain is one imported domain before it is written.
type domain struct {
	name, project string
	owned         bool
	desc          string
	trust         string
	egress        bool
	ephemeral     bool
	second, seq   int
	seqExplicit   bool
	bridge        string
	profiles      yamlw.Map
	machines      []*machine
	// member is the cluster member the project records
	// (incus.KeyMember), "" on a single server.
	member string
}

// target is the domain's cluster target import writes: the member its
// project records, or else the member of its first machine. The member,
// not the @group that may have picked it: the group is not recorded, and
// naming the member keeps the domain where it is.
func (d *domain) target() string {
	if d.member != "" || len(d.machines) == 0 {
		return d.member
	}
	return d.machines[0].target
}

// base returns the first three octets of the domain's subnet.
func (d *domain) base(baseOctet int) string {
	return fmt.Sprintf("%d.%d.%d", baseOctet, d.second, d.seq)
}

// importer holds the state of one Import call.
type importer struct {
	st      *State
	opts    Options
	infra   string
	prefix  string // the prefix owned names carry
	legacy  bool
	pool    string
	image   string
	pdBase  string
	fwVM    bool
	domains []*domain
	// volumes are the shared volumes rebuilt from sv- devices, by name.
	svs      map[string]*sharedVolume
	warnings []string
	global   map[string]string // project keys of §5.1 read back
}

func (im *importer) warnf(format string, args ...any) {
	im.warnings = append(im.warnings, fmt.Sprintf(format, args...))
}

// owned reports whether cfg marks an object owned by the imported infra.
func (im *importer) owned(cfg map[string]string) bool {
	return cfg[incus.KeyManaged] == "true" && cfg[incus.KeyInfra] == im.infra
}

// Import rebuilds the PSOT from st (SPEC.md §11). It returns an error for
// the conditions §11 names: an unknown --project, several
// infrastructures without --infra, a bridge off the zone grid.
func Import(st *State, opts Options) (*Result, error) {
	if st == nil || st.Observed == nil {
		return nil, errors.New("import: no observed state")
	}
	im := &importer{st: st, opts: opts, pool: defaultPool, svs: map[string]*sharedVolume{}, global: map[string]string{}}
	selected, err := im.selectProjects()
	if err != nil {
		return nil, err
	}
	if err := im.selectInfra(selected); err != nil {
		return nil, err
	}
	var ownedProjects, others []api.Project
	for _, p := range selected {
		switch {
		case im.owned(p.Config):
			ownedProjects = append(ownedProjects, p)
		case p.Config[incus.KeyManaged] == "true":
			if opts.Infra == "" {
				im.warnf("skipping project %q: it belongs to infrastructure %q", p.Name, p.Config[incus.KeyInfra])
			}
		case opts.OnlyAnklume:
		default:
			others = append(others, p)
		}
	}
	im.readGlobals(ownedProjects)
	if err := im.ownedDomains(ownedProjects); err != nil {
		return nil, err
	}
	im.unownedDomains(others)
	im.assignSeqs()
	im.sharedVolumes()
	im.persistentBase()
	return im.document(), nil
}

// selectProjects returns the projects to import: every project but
// default and the lock (anklume-lock and its tombstones), or those of --project.
func (im *importer) selectProjects() ([]api.Project, error) {
	byName := map[string]api.Project{}
	for _, p := range im.st.Projects {
		byName[p.Name] = p
	}
	if len(im.opts.Projects) > 0 {
		var out []api.Project
		for _, n := range im.opts.Projects {
			p, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("project %q not found", n)
			}
			if !slices.ContainsFunc(out, func(x api.Project) bool { return x.Name == n }) {
				out = append(out, p)
			}
		}
		return out, nil
	}
	var out []api.Project
	for _, p := range im.st.Projects {
		if p.Name != incus.DefaultProject && !lock.IsLockProject(p.Name) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// selectInfra picks project_name (§11 rule 1) among the infrastructures
// of the selected projects' owned objects.
func (im *importer) selectInfra(selected []api.Project) error {
	seen := map[string]bool{}
	inSel := map[string]bool{}
	for _, p := range selected {
		inSel[p.Name] = true
		if p.Config[incus.KeyManaged] == "true" && p.Config[incus.KeyInfra] != "" {
			seen[p.Config[incus.KeyInfra]] = true
		}
	}
	if len(im.opts.Projects) == 0 {
		for _, i := range im.st.Instances {
			if inSel[i.Project] && i.Config[incus.KeyManaged] == "true" && i.Config[incus.KeyInfra] != "" {
				seen[i.Config[incus.KeyInfra]] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	switch {
	case im.opts.Infra != "":
		if !seen[im.opts.Infra] {
			if len(names) == 0 {
				return fmt.Errorf("infrastructure %q not found: Incus holds no anklume-owned project", im.opts.Infra)
			}
			return fmt.Errorf("infrastructure %q not found (found: %s)", im.opts.Infra, strings.Join(names, ", "))
		}
		im.infra = im.opts.Infra
	case len(names) > 1:
		return fmt.Errorf("several infrastructures found (%s); pass --infra NAME", strings.Join(names, ", "))
	case len(names) == 1:
		im.infra = names[0]
	default:
		im.infra = DefaultInfra
	}
	return nil
}

// readGlobals reads the global keys of §5.1 from the owned projects.
func (im *importer) readGlobals(projects []api.Project) {
	for _, p := range projects {
		for _, k := range []string{incus.KeyGPUPolicy, incus.KeyAIAccessPolicy, incus.KeyAIAccessDefault,
			incus.KeyHostIsolation, incus.KeyAddressing} {
			if v, ok := p.Config[k]; ok && im.global[k] == "" {
				im.global[k] = v
			}
		}
		if p.Config[incus.KeyAddressing] == model.LegacyMode {
			im.legacy = true
		}
	}
	for _, pr := range im.st.Profiles {
		if pr.Name != incus.DefaultProfile || !im.owned(pr.Config) {
			continue
		}
		if root, ok := pr.Devices["root"]; ok && root["pool"] != "" {
			im.pool = root["pool"]
			break
		}
	}
}

// bridgeOf returns the owned bridge of domain d, or nil.
func (im *importer) bridgeOf(d string) *api.Network {
	for i := range im.st.Networks {
		n := &im.st.Networks[i]
		if im.owned(n.Config) && n.Config[incus.KeyDomain] == d {
			return n
		}
	}
	return nil
}

// ownedDomains builds a domain per owned project (§11 rules 2–4).
func (im *importer) ownedDomains(projects []api.Project) error {
	type placed struct {
		d      *domain
		bridge string
		addr   netip.Addr
	}
	var all []placed
	for _, p := range projects {
		name := p.Config[incus.KeyDomain]
		if name == "" {
			im.warnf("skipping project %q: it has no %s key", p.Name, incus.KeyDomain)
			continue
		}
		prefix, ok := strings.CutSuffix(p.Name, name)
		if !ok {
			im.warnf("skipping project %q: its name does not end with its domain %q", p.Name, name)
			continue
		}
		im.prefix = prefix
		d := &domain{name: name, project: p.Name, owned: true, desc: p.Description,
			trust: p.Config[incus.KeyTrustLevel], ephemeral: p.Config[incus.KeyEphemeral] == "true"}
		if im.st.Server != nil && im.st.Server.Environment.ServerClustered {
			d.member = p.Config[incus.KeyMember]
		}
		n := im.bridgeOf(name)
		if n == nil {
			im.warnf("skipping project %q: the bridge of domain %q was not found", p.Name, name)
			continue
		}
		d.bridge = n.Name
		d.egress = n.Config["ipv4.nat"] == "true"
		gw, err := netip.ParsePrefix(n.Config["ipv4.address"])
		if err != nil || !gw.Addr().Is4() {
			return fmt.Errorf("network %s: ipv4.address %q is not an IPv4 address", n.Name, n.Config["ipv4.address"])
		}
		a := gw.Addr().As4()
		d.second, d.seq = int(a[1]), int(a[2])
		if d.trust == "" && !im.legacy {
			d.trust = semiTrusted
		}
		d.profiles = im.domainProfiles(p.Name)
		all = append(all, placed{d, n.Name, gw.Addr()})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].bridge < all[j].bridge })

	// The grid (§11 rule 4): one zone_base, or one legacy base_subnet.
	var first, base int = -1, -1
	for _, pl := range all {
		a := pl.addr.As4()
		subnet := fmt.Sprintf("%d.%d.%d.0/24", a[0], a[1], a[2])
		if im.legacy {
			if first < 0 {
				first, base = int(a[0]), int(a[1])
			}
			if int(a[0]) != first || int(a[1]) != base {
				return fmt.Errorf("network %s (%s) does not fit the legacy base_subnet %d.%d of the other domains", pl.bridge, subnet, first, base)
			}
			continue
		}
		off, _ := zoneOffset(pl.d.trust)
		z := int(a[1]) - off
		if base < 0 {
			base = z
		}
		if a[0] != 10 || z != base || z < 0 || z > 245 {
			return fmt.Errorf("network %s (%s) does not fit the zone grid of the other domains (zone_base %d)", pl.bridge, subnet, base)
		}
	}
	if im.legacy && first >= 0 {
		im.global["base_subnet"] = fmt.Sprintf("%d.%d", first, base)
	}
	if !im.legacy {
		if base < 0 {
			base = defaultZoneBase
		}
		im.global["zone_base"] = fmt.Sprint(base)
	}

	// Machines, then domain order: by subnet.
	for _, pl := range all {
		im.ownedMachines(pl.d)
		im.domains = append(im.domains, pl.d)
	}
	sort.SliceStable(im.domains, func(i, j int) bool {
		a, b := im.domains[i], im.domains[j]
		if a.second != b.second {
			return a.second < b.second
		}
		return a.seq < b.seq
	})
	im.images()
	return nil
}

// zoneBase returns the recovered zone_base.
func (im *importer) zoneBase() int {
	var z int
	fmt.Sscan(im.global["zone_base"], &z)
	return z
}

// domainProfiles returns the domain profiles of project (§11 rule 2):
// every profile except default and firewall-multi-nic, with
// user.anklume.* removed, sorted by name.
func (im *importer) domainProfiles(project string) yamlw.Map {
	var out yamlw.Map
	var profs []api.Profile
	for _, p := range im.st.Profiles {
		if p.Project == project && p.Name != incus.DefaultProfile && p.Name != model.FirewallProfileName {
			profs = append(profs, p)
		}
	}
	sort.Slice(profs, func(i, j int) bool { return profs[i].Name < profs[j].Name })
	for _, p := range profs {
		var m yamlw.Map
		if p.Description != "" {
			m = append(m, yamlw.KV{Key: "description", Value: yamlw.Str(p.Description)})
		}
		if cfg := strMap(p.Config, func(k string) bool { return !strings.HasPrefix(k, incus.OwnershipKeyPrefix) }); len(cfg) > 0 {
			m = append(m, yamlw.KV{Key: "config", Value: cfg})
		}
		if devs := devicesDoc(p.Devices, nil); len(devs) > 0 {
			m = append(m, yamlw.KV{Key: "devices", Value: devs})
		}
		out = append(out, yamlw.KV{Key: p.Name, Value: m})
	}
	return out
}

// strMap returns the keys of cfg that keep accepts, sorted, as strings.
func strMap(cfg map[string]string, keep func(string) bool) yamlw.Map {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		if keep == nil || keep(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make(yamlw.Map, 0, len(keys))
	for _, k := range keys {
		out = append(out, yamlw.KV{Key: k, Value: yamlw.Str(cfg[k])})
	}
	return out
}

// devicesDoc writes devices sorted by name; only the names in names when
// names is not nil. Properties put type first, then the rest sorted.
func devicesDoc(devs map[string]map[string]string, names []string) yamlw.Map {
	if names == nil {
		for n := range devs {
			names = append(names, n)
		}
	}
	names = slices.Clone(names)
	sort.Strings(names)
	var out yamlw.Map
	for _, n := range names {
		d, ok := devs[n]
		if !ok {
			continue
		}
		props := yamlw.Map{}
		if t, ok := d["type"]; ok {
			props = append(props, yamlw.KV{Key: "type", Value: yamlw.Str(t)})
		}
		props = append(props, strMap(d, func(k string) bool { return k != "type" })...)
		out = append(out, yamlw.KV{Key: n, Value: props})
	}
	return out
}

// images picks default_os_image: the image most owned machines were
// created from.
func (im *importer) images() {
	count := map[string]int{}
	for _, d := range im.domains {
		for _, x := range d.machines {
			if x.image != "" {
				count[x.image]++
			}
		}
	}
	best, n := "", 0
	for img, c := range count {
		if c > n || (c == n && img < best) {
			best, n = img, c
		}
	}
	im.image = best
}

// names returns every domain and machine name already imported.
func (im *importer) names() map[string]bool {
	out := map[string]bool{}
	for _, d := range im.domains {
		out[d.name] = true
		for _, x := range d.machines {
			out[x.name] = true
		}
	}
	return out
}

// validName returns why name cannot be a domain or machine name, or "".
func validName(name string, machine bool) string {
	switch {
	case len(name) > 63:
		return "longer than 63 characters"
	case !machine && (name == incus.DefaultProject || lock.IsLockProject(name)):
		return "the name is reserved"
	case !nameRe.MatchString(name):
		return "not a valid name (lowercase letters, digits and inner hyphens)"
	case strings.HasPrefix(name, "x-"):
		return `it starts with "x-"`
	case machine && digitsRe.MatchString(name):
		return "it consists of digits only"
	}
	return ""
}

// unownedDomains builds the best-effort domains of §11 rule 5.
func (im *importer) unownedDomains(projects []api.Project) {
	taken := im.names()
	for _, p := range projects {
		name := strings.TrimPrefix(p.Name, im.opts.Prefix)
		if why := validName(name, false); why != "" {
			im.warnf("skipping project %q: %s", p.Name, why)
			continue
		}
		if taken[name] {
			im.warnf("skipping project %q: the name %q is already imported", p.Name, name)
			continue
		}
		taken[name] = true
		d := &domain{name: name, project: p.Name, desc: p.Description, trust: semiTrusted, egress: true, seq: -1}
		for i := range im.st.Instances {
			in := &im.st.Instances[i]
			if in.Project != p.Name {
				continue
			}
			mname := strings.TrimPrefix(in.Name, im.opts.Prefix)
			if why := validName(mname, true); why != "" {
				im.warnf("skipping instance %q: %s", in.Project+"/"+in.Name, why)
				continue
			}
			if taken[mname] {
				im.warnf("skipping instance %q: the name %q is already imported", in.Project+"/"+in.Name, mname)
				continue
			}
			taken[mname] = true
			x := &machine{name: mname, inst: in, typ: model.LXC, config: map[string]string{}}
			if in.Type == string(api.InstanceTypeVM) {
				x.typ = model.VM
			}
			x.desc = in.Description
			addr := eth0Address(in)
			if addr == "" {
				addr = im.st.Addresses[in.Project+"/"+in.Name]
			}
			if a, err := netip.ParseAddr(addr); err == nil && a.Is4() {
				x.ip = a
			}
			x.protected = true
			d.machines = append(d.machines, x)
		}
		im.domains = append(im.domains, d)
	}
}

// assignSeqs gives the unowned domains the next free semi-trusted seq
// (legacy mode: the next free subnet_id), drops their out-of-subnet IPs,
// then marks the subnet_ids and IPs that automatic assignment would not
// reproduce (§4.2, §4.4).
func (im *importer) assignSeqs() {
	if im.legacy {
		used := map[int]bool{}
		for _, d := range im.domains {
			if d.owned {
				used[d.seq] = true
			}
		}
		var b [2]int
		fmt.Sscanf(im.global["base_subnet"], "%d.%d", &b[0], &b[1])
		if im.global["base_subnet"] == "" {
			b = [2]int{10, 100}
			im.global["base_subnet"] = defaultBaseSubnet
		}
		for _, d := range im.domains {
			d.seqExplicit = true
			if d.owned {
				continue
			}
			d.seq = nextFree(used)
			d.second = b[1]
			im.dropForeignIPs(d, b[0])
		}
		for _, d := range im.domains {
			im.markIPs(d, false)
		}
		return
	}
	z := im.zoneBase()
	used := map[int]bool{}
	for _, d := range im.domains {
		if d.owned && d.trust == semiTrusted {
			used[d.seq] = true
		}
	}
	for _, d := range im.domains {
		if d.owned {
			continue
		}
		d.seq = nextFree(used)
		d.second = z + 20
		im.dropForeignIPs(d, 10)
	}
	zones := map[string][]*domain{}
	for _, d := range im.domains {
		zones[d.trust] = append(zones[d.trust], d)
	}
	for _, ds := range zones {
		sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
		want := make([]int, len(ds))
		for i, d := range ds {
			want[i] = d.seq
		}
		for i, e := range minimalExplicit(want, 0) {
			ds[i].seqExplicit = e
		}
	}
	for _, d := range im.domains {
		im.markIPs(d, true)
	}
}

// nextFree returns the smallest value ≥ 0 not in used, and takes it.
func nextFree(used map[int]bool) int {
	n := 0
	for used[n] {
		n++
	}
	used[n] = true
	return n
}

// dropForeignIPs drops, with a warning, the IPs of an unowned domain's
// machines that fall outside its new subnet.
func (im *importer) dropForeignIPs(d *domain, baseOctet int) {
	subnet := netip.MustParsePrefix(d.base(baseOctet) + ".0/24")
	for _, x := range d.machines {
		if x.ip.IsValid() && !subnet.Contains(x.ip) {
			im.warnf("dropping ip %s of machine %q: it is outside the subnet %s of domain %q", x.ip, x.name, subnet, d.name)
			x.ip = netip.Addr{}
		}
	}
}

// markIPs sorts the machines of d by host number (machines without an IP
// last) and, in zone mode, marks the IPs that automatic assignment would
// not give; in legacy mode every IP is explicit.
func (im *importer) markIPs(d *domain, zone bool) {
	sort.SliceStable(d.machines, func(i, j int) bool {
		a, b := d.machines[i], d.machines[j]
		if a.ip.IsValid() != b.ip.IsValid() {
			return a.ip.IsValid()
		}
		return a.ip.Less(b.ip)
	})
	if !zone {
		for _, x := range d.machines {
			x.ipExplicit = x.ip.IsValid()
		}
		return
	}
	want := make([]int, len(d.machines))
	for i, x := range d.machines {
		want[i] = -1
		if x.ip.IsValid() {
			want[i] = int(x.ip.As4()[3])
		}
	}
	for i, e := range minimalExplicit(want, 1) {
		d.machines[i].ipExplicit = e
	}
}

// minimalExplicit returns which entries of want must be written
// explicitly so that the automatic assignment (a counter from start that
// skips explicit values, walked in slice order) reproduces want. An entry
// of -1 wants nothing and takes what it is given. Entries are made
// explicit until the assignment is stable, so the result is always
// correct and usually minimal.
func minimalExplicit(want []int, start int) []bool {
	explicit := make([]bool, len(want))
	for {
		taken := map[int]bool{}
		for i, e := range explicit {
			if e {
				taken[want[i]] = true
			}
		}
		changed := false
		next := start
		for i := range want {
			if explicit[i] {
				continue
			}
			for taken[next] {
				next++
			}
			got := next
			taken[got] = true
			next++
			if want[i] >= 0 && got != want[i] {
				explicit[i] = true
				changed = true
				break
			}
		}
		if !changed {
			return explicit
		}
	}
}
