// Package resolve turns a validated PSOT into the resolved model (SPEC.md
// §4), running stages S3 and S4. It runs only when S0–S2 found no error,
// yet it never panics on odd input: a node of an unexpected shape is
// skipped.
package resolve

import (
	"fmt"
	"github.com/anklume/anklume/compiler/semantic"
	"sort"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/compiler/model"
)

// Defaults of SPEC.md §2.4.
const (
	defaultOSImage           = "images:debian/13"
	defaultBaseSubnet        = "10.100"
	defaultSharedVolumesBase = "/srv/anklume/shares"
	defaultPersistentData    = "/srv/anklume/data"
	defaultStoragePool       = "default"
)

// machSrc keeps the PSOT nodes of a machine for diagnostics.
type machSrc struct {
	node *load.Node
	path diag.Path
	ip   *load.Node // explicit ip value, nil when absent
}

// domSrc keeps the PSOT nodes of a domain for diagnostics.
type domSrc struct {
	node     *load.Node
	path     diag.Path
	profiles map[string]*load.Node
}

// resolver carries the state of one Resolve call.
type resolver struct {
	opts host.Options
	root *load.Node
	dl   diag.List
	m    *model.Infra

	doms  map[*model.Domain]*domSrc
	machs map[*model.Machine]*machSrc
	// genGPU marks the machines that get the generated gpu device.
	genGPU map[*model.Machine]bool
	// svDevices holds each machine's sv- devices in volume order.
	svDevices map[*model.Machine]model.Devices
}

// Resolve resolves root, which passed S0–S2, into the model. It returns a
// nil model when S3 or S4 found an error; the diagnostics then hold it.
// Info lines (§4.7, §4.10) and warnings (W6, W7, W18, the V31 remote
// warning) are returned in both cases.
func Resolve(root *load.Node, opts host.Options) (*model.Infra, diag.List) {
	r := &resolver{
		opts:      opts,
		root:      root,
		m:         &model.Infra{},
		doms:      map[*model.Domain]*domSrc{},
		machs:     map[*model.Machine]*machSrc{},
		genGPU:    map[*model.Machine]bool{},
		svDevices: map[*model.Machine]model.Devices{},
	}
	// S3, in the order of SPEC.md §4.
	r.globals()
	r.domains()
	r.addressing()
	r.autoIPs()
	r.images()
	r.gpuDevices()
	r.firewall()
	r.policies()
	r.resources()
	r.sharedVolumes()
	r.assembleDevices()
	r.m.Build()
	if r.dl.HasErrors() {
		return nil, r.dl
	}
	// S4.
	r.checkIPs()
	r.checkNICs()
	r.checkIncusNames()
	r.checkHostSubnets()
	if r.dl.HasErrors() {
		return nil, r.dl
	}
	return r.m, r.dl
}

// --- small readers over the validated tree -------------------------------

func str(n *load.Node, key, def string) string {
	v := n.Val(key)
	if v == nil || v.Kind != load.Scalar {
		return def
	}
	return v.Value
}

func boolean(n *load.Node, key string, def bool) bool {
	v := n.Val(key)
	if !v.IsBool() {
		return def
	}
	return v.Bool()
}

func integer(n *load.Node, key string, def int) int {
	v := n.Val(key)
	i, ok := v.Int()
	if !ok {
		return def
	}
	return int(i)
}

// entries returns the entries of a mapping (nil for anything else).
func entries(n *load.Node) []load.Entry {
	if n == nil || n.Kind != load.Map {
		return nil
	}
	return n.Entries
}

// strList returns the string items of a list.
func strList(n *load.Node) []string {
	if n == nil || n.Kind != load.Seq {
		return nil
	}
	out := make([]string, 0, len(n.Items))
	for _, it := range n.Items {
		if it != nil && it.Kind == load.Scalar {
			out = append(out, it.Value)
		}
	}
	return out
}

// incusValue turns a scalar into its Incus string (SPEC.md §2.2 item 8).
func incusValue(n *load.Node) (string, model.Kind, bool) {
	if n == nil || n.Kind != load.Scalar {
		return "", model.String, false
	}
	switch n.Tag {
	case load.TagBool:
		return strconv.FormatBool(n.Bool()), model.Bool, true
	case load.TagInt:
		if i, ok := n.Int(); ok {
			return strconv.FormatInt(i, 10), model.Int, true
		}
		return n.Value, model.Int, true
	}
	return n.Value, model.String, true
}

// incusKV converts a config mapping; non-scalar values (rejected by N7)
// are skipped, and so are x- keys nowhere: config keys are free-form.
func incusKV(n *load.Node) model.KV {
	var out model.KV
	for _, e := range entries(n) {
		v, k, ok := incusValue(e.Value)
		if !ok {
			continue
		}
		out = append(out, model.Pair{Key: e.Key, Value: v, Kind: k})
	}
	return out
}

// incusDevices converts a devices mapping.
func incusDevices(n *load.Node) model.Devices {
	var out model.Devices
	for _, e := range entries(n) {
		out = append(out, model.Device{Name: e.Key, Props: incusKV(e.Value), Origin: model.UserDevice})
	}
	return out
}

// writtenKeys lists the keys of a mapping in order, x- keys removed.
func writtenKeys(n *load.Node) []string {
	var out []string
	for _, e := range entries(n) {
		if !strings.HasPrefix(e.Key, "x-") {
			out = append(out, e.Key)
		}
	}
	return out
}

// --- globals and domains ---------------------------------------------------

func (r *resolver) global() *load.Node { return r.root.Val("global") }

func (r *resolver) globals() {
	g := r.global()
	m := r.m
	m.ProjectName = str(r.root, "project_name", "")
	gl := &m.Global
	gl.BaseSubnet = str(g, "base_subnet", defaultBaseSubnet)
	gl.DefaultOSImage = str(g, "default_os_image", defaultOSImage)
	gl.DefaultConnection = str(g, "default_connection", "")
	gl.DefaultUser = str(g, "default_user", "")
	gl.GPUPolicy = str(g, "gpu_policy", "exclusive")
	gl.FirewallMode = str(g, "firewall_mode", "host")
	gl.AIAccessPolicy = str(g, "ai_access_policy", "open")
	gl.AIAccessDefault = str(g, "ai_access_default", "")
	gl.AIVRAMFlush = boolean(g, "ai_vram_flush", true)
	gl.NestingPrefix = boolean(g, "nesting_prefix", true)
	gl.HostIsolation = boolean(g, "host_isolation", true)
	gl.SharedVolumesBase = str(g, "shared_volumes_base", defaultSharedVolumesBase)
	gl.PersistentDataBase = str(g, "persistent_data_base", defaultPersistentData)
	m.StoragePool = str(g, "storage_pool", defaultStoragePool)

	m.Addressing = model.LegacyMode
	if a := g.Val("addressing"); a != nil && a.Kind == load.Map {
		m.Addressing = model.ZoneMode
		gl.AddressingKeys = model.KV{}
		for _, e := range a.Entries {
			if strings.HasPrefix(e.Key, "x-") {
				continue
			}
			if v, k, ok := incusValue(e.Value); ok {
				gl.AddressingKeys = append(gl.AddressingKeys, model.Pair{Key: e.Key, Value: v, Kind: k})
			}
		}
		gl.BaseOctet = integer(a, "base_octet", 10)
		gl.ZoneBase = integer(a, "zone_base", 100)
		gl.ZoneStep = integer(a, "zone_step", 10)
	}

	if rp := g.Val("resource_policy"); rp != nil && (rp.Kind == load.Map || rp.IsBool() && rp.Bool()) {
		reserve := rp.Val("host_reserve")
		gl.ResourcePolicy = &model.ResourcePolicy{
			HostReserveCPU:    scalarText(reserve.Val("cpu"), "20%"),
			HostReserveMemory: scalarText(reserve.Val("memory"), "20%"),
			Mode:              str(rp, "mode", "proportional"),
			CPUMode:           str(rp, "cpu_mode", "allowance"),
			MemoryEnforce:     str(rp, "memory_enforce", "soft"),
			Overcommit:        boolean(rp, "overcommit", false),
		}
	}

	m.Level = r.opts.Context.Level
	if m.Level > 0 && gl.NestingPrefix {
		m.Prefix = fmt.Sprintf("%03d-", m.Level)
	}
}

func scalarText(n *load.Node, def string) string {
	if n == nil || n.Kind != load.Scalar {
		return def
	}
	return n.Value
}

func (r *resolver) domains() {
	m := r.m
	zone := m.Addressing == model.ZoneMode
	for _, de := range entries(r.root.Val("domains")) {
		dn := de.Value
		d := &model.Domain{
			Name:        de.Key,
			Pos:         de.KeyPos,
			Project:     m.Prefix + de.Key,
			Description: str(dn, "description", ""),
			Enabled:     boolean(dn, "enabled", true),
			TrustLevel:  str(dn, "trust_level", ""),
			Egress:      boolean(dn, "egress", true),
			Ephemeral:   boolean(dn, "ephemeral", false),
			AIProvider:  str(dn, "ai_provider", "local"),
		}
		if d.TrustLevel == "" && zone {
			d.TrustLevel = "semi-trusted"
		}
		d.AISanitize = "false"
		if d.AIProvider == "cloud" || d.AIProvider == "local-first" {
			d.AISanitize = "true"
		}
		if v := dn.Val("ai_sanitize"); v != nil && v.Kind == load.Scalar {
			if v.IsBool() {
				d.AISanitize = strconv.FormatBool(v.Bool())
			} else {
				d.AISanitize = v.Value
			}
		}
		if id, ok := dn.Val("subnet_id").Int(); ok {
			d.Seq, d.SeqExplicit = int(id), true
		}
		if fp := dn.Val("file_portal"); fp != nil && fp.Kind == load.Map {
			d.FilePortal = &model.FilePortal{ReadOnly: boolean(fp, "read_only", false)}
			if ps := fp.Val("allowed_paths"); ps != nil {
				for _, it := range ps.Items {
					if it.Kind == load.Scalar {
						d.FilePortal.AllowedPaths = append(d.FilePortal.AllowedPaths, it.Value)
					}
				}
			}
		}
		r.names(d)
		src := &domSrc{node: dn, path: diag.Path("").Key("domains").Key(d.Name), profiles: map[string]*load.Node{}}
		r.doms[d] = src
		for _, pe := range entries(dn.Val("profiles")) {
			pn := pe.Value
			src.profiles[pe.Key] = pn
			d.Profiles = append(d.Profiles, &model.Profile{
				Name:        pe.Key,
				Description: str(pn, "description", ""),
				Config:      incusKV(pn.Val("config")),
				Devices:     incusDevices(pn.Val("devices")),
				Keys:        writtenKeys(pn),
			})
		}
		d.Target = str(dn, "target", "")
		for _, me := range entries(dn.Val("machines")) {
			r.machine(d, src, me)
		}
		placeDomain(d)
		m.Domains = append(m.Domains, d)
	}
}

// placeDomain settles the domain's cluster target: its own `target`, or
// else the one its machines name (validation refuses machines that
// disagree with each other or with the domain), and gives it to every
// machine of the domain, since they all live on one member.
func placeDomain(d *model.Domain) {
	if d.Target == "" {
		for _, x := range d.Machines {
			if x.Target != "" {
				d.Target = x.Target
				break
			}
		}
	}
	for _, x := range d.Machines {
		x.Target = d.Target
	}
}

// names computes the project and bridge names of §4.5, with W18.
func (r *resolver) names(d *model.Domain) {
	p := r.m.Prefix
	d.Bridge = p + "net-" + d.Name
	if len(d.Bridge) > 15 {
		n := 15 - 4 - len(p)
		if n < 1 {
			n = 1
		}
		d.Bridge = p + "net-" + sha256Hex(d.Name)[:n]
		d.BridgeShortened = true
		r.dl.Warnf(d.Pos, diag.Path("").Key("domains").Key(d.Name).String(), "",
			"bridge for domain %q is named %q: Linux limits interface names to 15 characters", d.Name, d.Bridge)
	}
}

func (r *resolver) machine(d *model.Domain, ds *domSrc, me load.Entry) {
	mn := me.Value
	x := &model.Machine{
		Name:        me.Key,
		Pos:         me.KeyPos,
		Instance:    r.m.Prefix + me.Key,
		Domain:      d,
		Description: str(mn, "description", ""),
		Type:        str(mn, "type", model.LXC),
		State:       str(mn, "state", "running"),
		Weight:      integer(mn, "weight", 1),
		Target:      str(mn, "target", ""),
		Ephemeral:   d.Ephemeral,
	}
	src := &machSrc{node: mn, path: ds.path.Key("machines").Key(x.Name)}
	if v := mn.Val("ip"); v.IsStr() {
		src.ip = v
		x.IPExplicit = true
	}
	if v := mn.Val("ephemeral"); v.IsBool() {
		x.Ephemeral, x.EphemeralSet = v.Bool(), true
	}
	x.Protected = !x.Ephemeral
	if v := mn.Val("gpu"); v.IsBool() {
		x.GPU, x.GPUSet = v.Bool(), true
	}
	x.Profiles = []string{"default"}
	if v := mn.Val("profiles"); v != nil && v.Kind == load.Seq {
		x.Profiles, x.ProfilesSet = strList(v), true
	}
	if v := mn.Val("config"); v != nil && v.Kind == load.Map {
		x.Config, x.ConfigSet = incusKV(v), true
	}
	if v := mn.Val("devices"); v != nil && v.Kind == load.Map {
		x.Devices, x.DevicesSet = incusDevices(v), true
	}
	if v := mn.Val("roles"); v != nil && v.Kind == load.Seq {
		x.Roles, x.RolesSet = strList(v), true
	}
	if v := mn.Val("storage_volumes"); v != nil && v.Kind == load.Map {
		x.StorageVolumesSet = true
		for _, e := range v.Entries {
			sv := model.StorageVolume{
				Name: e.Key,
				Pool: str(e.Value, "pool", ""),
				Size: str(e.Value, "size", ""),
				Path: str(e.Value, "path", ""),
			}
			sv.ResolvedPool = sv.Pool
			if sv.ResolvedPool == "" {
				sv.ResolvedPool = r.m.StoragePool
			}
			x.StorageVolumes = append(x.StorageVolumes, sv)
		}
	}
	for _, e := range entries(mn.Val("persistent_data")) {
		x.PersistentData = append(x.PersistentData, model.PersistentData{
			Name:     e.Key,
			Path:     str(e.Value, "path", ""),
			ReadOnly: boolean(e.Value, "readonly", false),
			Source:   r.m.Global.PersistentDataBase + "/" + d.Name + "/" + x.Name + "/" + e.Key,
		})
	}
	if v := mn.Val("boot_autostart"); v.IsBool() {
		b := v.Bool()
		x.BootAutostart = &b
	}
	if i, ok := mn.Val("boot_priority").Int(); ok {
		p := int(i)
		x.BootPriority = &p
	}
	x.SnapshotsSchedule = str(mn, "snapshots_schedule", "")
	x.SnapshotsExpiry, _ = semantic.NormalizeExpiry(str(mn, "snapshots_expiry", ""))
	x.Image = str(mn, "os_image", "")
	d.Machines = append(d.Machines, x)
	r.m.Machines = append(r.m.Machines, x)
	r.machs[x] = src
}

// --- images (§4.12) --------------------------------------------------------

func (r *resolver) images() {
	for _, x := range r.m.Machines {
		x.Image = r.image(x.Image)
	}
}

// image resolves one os_image reference: the default image when empty,
// then ANKLUME_IMAGE_MAP (exact match, no chaining). Mappings used are
// recorded for the plan notes.
func (r *resolver) image(ref string) string {
	if ref == "" {
		ref = r.m.Global.DefaultOSImage
	}
	to, ok := r.opts.ImageMap[ref]
	if !ok {
		return ref
	}
	for _, im := range r.m.ImageMappings {
		if im.From == ref {
			return to
		}
	}
	r.m.ImageMappings = append(r.m.ImageMappings, model.ImageMapping{From: ref, To: to})
	sort.Slice(r.m.ImageMappings, func(i, j int) bool { return r.m.ImageMappings[i].From < r.m.ImageMappings[j].From })
	return to
}
