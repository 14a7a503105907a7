// Package model is the resolved model of a PSOT: the desired state that
// every back end consumes (SPEC.md §4.13). It is built by resolve and never
// changed afterwards: back ends read it, and a back end that needs a
// variant (a KV with extra keys, say) builds a copy (KV.Set, KV.Clone).
//
// Names on the Incus side (project, bridge, instance) are computed once
// here; no emitter rebuilds them.
package model

import (
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
)

// Addressing mode (SPEC.md §4.2, §4.3).
const (
	// ZoneMode is selected by the presence of global.addressing.
	ZoneMode = "zone"
	// LegacyMode is used when global.addressing is absent.
	LegacyMode = "legacy"
)

// Machine types.
const (
	// LXC is an Incus container.
	LXC = "lxc"
	// VM is an Incus virtual machine.
	VM = "vm"
)

// Firewall names (SPEC.md §4.7).
const (
	// FirewallMachineName is the machine anklume adds with firewall_mode vm.
	FirewallMachineName = "anklume-firewall"
	// FirewallProfileName is the generated profile holding the extra NICs.
	FirewallProfileName = "firewall-multi-nic"
)

// Infra is the resolved infrastructure.
type Infra struct {
	// ProjectName is project_name.
	ProjectName string
	// Level is the nesting level (absolute_level).
	Level int
	// Prefix is the nesting prefix, "001-", or "" (SPEC.md §4.5).
	Prefix string
	// StoragePool is global.storage_pool (default "default").
	StoragePool string
	// Addressing is ZoneMode or LegacyMode.
	Addressing string
	// Global holds the global settings.
	Global Global
	// Domains holds every domain, enabled or not, in declaration order.
	Domains []*Domain
	// Machines holds every machine of every domain, in declaration order
	// (domain order, then machine order; the added firewall machine is last
	// in its domain).
	Machines []*Machine
	// Firewall is the firewall machine (added or user-declared) when
	// firewall_mode is vm, else nil.
	Firewall *Machine
	// Policies is the final policy list: the user's policies, then the AI
	// auto-policy (SPEC.md §4.8).
	Policies []*Policy
	// SharedVolumes are the resolved shared volumes, in declaration order.
	SharedVolumes []*SharedVolume
	// ImageMappings lists each ANKLUME_IMAGE_MAP mapping that was used,
	// sorted by From (for the plan notes of §4.12).
	ImageMappings []ImageMapping

	domainIdx  map[string]*Domain
	machineIdx map[string]*Machine
}

// Global holds the global settings the back ends need (SPEC.md §2.4).
type Global struct {
	// BaseSubnet is base_subnet (default "10.100"); meaningful in legacy
	// mode only.
	BaseSubnet string
	// AddressingKeys is global.addressing as written (x- keys removed),
	// every value an integer in decimal; nil in legacy mode.
	AddressingKeys KV
	// BaseOctet, ZoneBase and ZoneStep are the resolved addressing values.
	BaseOctet, ZoneBase, ZoneStep int
	// DefaultOSImage is default_os_image (default images:debian/13).
	DefaultOSImage string
	// DefaultConnection and DefaultUser are "" when absent.
	DefaultConnection string
	DefaultUser       string
	// GPUPolicy is "exclusive" or "shared".
	GPUPolicy string
	// FirewallMode is "host" or "vm".
	FirewallMode string
	// AIAccessPolicy is "exclusive" or "open".
	AIAccessPolicy string
	// AIAccessDefault is "" when absent.
	AIAccessDefault string
	// AIAccessHolder is the domain that holds the exclusive AI access now,
	// when `anklume ai switch` moved it away from AIAccessDefault. It is
	// never read from the PSOT: internal/aiaccess.Overlay sets it from the
	// live Incus projects (and moves the auto policy with it); "" means
	// AIAccessDefault holds it.
	AIAccessHolder string
	// AIVRAMFlush is ai_vram_flush (no effect in version 1).
	AIVRAMFlush bool
	// NestingPrefix is nesting_prefix.
	NestingPrefix bool
	// HostIsolation is host_isolation.
	HostIsolation bool
	// SharedVolumesBase and PersistentDataBase are the base directories.
	SharedVolumesBase  string
	PersistentDataBase string
	// ResourcePolicy is nil when resource_policy is absent.
	ResourcePolicy *ResourcePolicy
}

// ResourcePolicy is global.resource_policy with defaults applied (SPEC.md
// §2.6).
type ResourcePolicy struct {
	// HostReserveCPU and HostReserveMemory are the reserves as written
	// ("20%", "4GiB", "2").
	HostReserveCPU    string
	HostReserveMemory string
	// Mode is "proportional" or "equal".
	Mode string
	// CPUMode is "allowance" or "count".
	CPUMode string
	// MemoryEnforce is "soft" or "hard".
	MemoryEnforce string
	// Overcommit allows overcommit with a warning.
	Overcommit bool
}

// ImageMapping is one image reference replaced by ANKLUME_IMAGE_MAP.
type ImageMapping struct {
	From, To string
}

// Domain is one resolved domain.
type Domain struct {
	// Name is the unprefixed domain name.
	Name string
	// Pos is the position of the domain's name key.
	Pos diag.Pos
	// Project is the Incus project, "<prefix><name>".
	Project string
	// Bridge is the bridge network, "<prefix>net-<name>" or its shortened
	// form (SPEC.md §4.5).
	Bridge string
	// BridgeShortened is true when Bridge is the SHA-256 form (W18).
	BridgeShortened bool
	// Description is "" when absent.
	Description string
	// Enabled is false for a disabled domain: no files, no Incus objects.
	Enabled bool
	// TrustLevel is "" in legacy mode unless given.
	TrustLevel string
	// Seq is the domain_seq (zone mode) or subnet_id (legacy mode), the
	// third octet of the subnet.
	Seq int
	// SeqExplicit is true when subnet_id was written.
	SeqExplicit bool
	// Subnet is the domain's /24, e.g. 10.110.0.0/24.
	Subnet netip.Prefix
	// Gateway is the .254 address of the subnet.
	Gateway netip.Addr
	// Egress is false for an air-gapped domain.
	Egress bool
	// Ephemeral is the domain default (false = protected).
	Ephemeral bool
	// AIProvider is "local", "cloud" or "local-first".
	AIProvider string
	// AISanitize is "true", "false" or "always"; the first two were (or
	// default to) YAML booleans, "always" is a string.
	AISanitize string
	// FilePortal is the domain's file_portal, nil when absent.
	FilePortal *FilePortal
	// Profiles are the domain profiles in declaration order (not the
	// default profile, not firewall-multi-nic).
	Profiles []*Profile
	// FirewallProfile is the generated firewall-multi-nic profile when this
	// domain holds the firewall machine, else nil.
	FirewallProfile *Profile
	// Machines are the domain's machines in declaration order.
	Machines []*Machine
	// Target is where the domain lives on an Incus cluster: a member
	// name, "@<group>" for a cluster group, or "" when unset. The domain
	// is the unit of placement: its bridge is one L2 segment, so every
	// machine of the domain lives on one member (a bridge does not span
	// members without OVN, which anklume does not set up). It is the
	// domain's `target`, or else the `target` its machines agree on
	// (validation refuses machines that disagree). The member a group
	// target picks is chosen at plan time (internal/reconcile) and
	// recorded on the domain's project, never here.
	Target string
}

// TargetIsGroup reports whether the domain's target names a cluster
// group ("@<group>").
func (d *Domain) TargetIsGroup() bool { return strings.HasPrefix(d.Target, "@") }

// FilePortal is a domain's file_portal: the directories of its machines
// through which files are exchanged with other domains and the host
// (`anklume copy`, `anklume clipboard`).
type FilePortal struct {
	// AllowedPaths are clean absolute directories (or files). A path
	// inside one of them is in the portal.
	AllowedPaths []string
	// ReadOnly makes the portal an inbox: files may be copied into it,
	// never out of it.
	ReadOnly bool
}

// Contains reports whether the absolute path p is one of AllowedPaths or
// inside one of them (p is cleaned first, so "/srv/in/../etc" is not in
// "/srv/in").
func (fp *FilePortal) Contains(p string) bool {
	if fp == nil || !path.IsAbs(p) {
		return false
	}
	p = path.Clean(p)
	for _, a := range fp.AllowedPaths {
		if p == a || a == "/" || strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}

// CIDR returns the subnet as "10.110.0.0/24".
func (d *Domain) CIDR() string { return d.Subnet.String() }

// Network returns the network address, "10.110.0.0".
func (d *Domain) Network() string { return d.Subnet.Addr().String() }

// Base returns the first three octets, "10.110.0".
func (d *Domain) Base() string {
	a := d.Subnet.Addr().As4()
	return strconv.Itoa(int(a[0])) + "." + strconv.Itoa(int(a[1])) + "." + strconv.Itoa(int(a[2]))
}

// Host returns the address with host number n in the domain's /24.
func (d *Domain) Host(n int) netip.Addr {
	a := d.Subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// Profile returns the domain profile named name (including
// firewall-multi-nic), or nil.
func (d *Domain) Profile(name string) *Profile {
	for _, p := range d.Profiles {
		if p.Name == name {
			return p
		}
	}
	if d.FirewallProfile != nil && d.FirewallProfile.Name == name {
		return d.FirewallProfile
	}
	return nil
}

// Profile is one domain profile, or the generated firewall-multi-nic.
type Profile struct {
	Name        string
	Description string
	// Config holds the profile config as Incus strings.
	Config KV
	// Devices holds the devices with their properties as Incus strings.
	Devices Devices
	// Keys lists the keys the PSOT wrote (description, config, devices) in
	// order, for emitters that write the profile as written; nil for the
	// generated profile.
	Keys []string
	// Generated is true for firewall-multi-nic.
	Generated bool
}

// StorageVolume is one entry of a machine's storage_volumes (SPEC.md §5.5).
type StorageVolume struct {
	Name string
	// Pool is the pool as written ("" when absent); ResolvedPool applies
	// the storage_pool default.
	Pool         string
	ResolvedPool string
	// Size and Path are "" when absent.
	Size string
	Path string
}

// PersistentData is one entry of a machine's persistent_data.
type PersistentData struct {
	Name     string
	Path     string
	ReadOnly bool
	// Source is <persistent_data_base>/<domain>/<machine>/<name>.
	Source string
}

// Machine is one resolved machine.
type Machine struct {
	// Name is the unprefixed machine name.
	Name string
	// Pos is the position of the machine's name key (the position of
	// firewall_mode for the machine anklume adds).
	Pos diag.Pos
	// Instance is the Incus instance name, "<prefix><name>".
	Instance string
	// Domain is the machine's domain.
	Domain *Domain
	// Description is "" when absent.
	Description string
	// Type is LXC or VM.
	Type string
	// IP is the static address; invalid (IP.IsValid() false) when the
	// machine has none (legacy mode without ip).
	IP netip.Addr
	// IPExplicit is true when the PSOT wrote the ip (or for the added
	// firewall machine), false for an automatic IP.
	IPExplicit bool
	// Ephemeral is the resolved ephemeral flag; Protected is its inverse.
	Ephemeral bool
	Protected bool
	// EphemeralSet is true when the machine wrote ephemeral itself.
	EphemeralSet bool
	// State is "running" or "stopped".
	State string
	// Image is the image reference after ANKLUME_IMAGE_MAP.
	Image string
	// Profiles is the profile list: as written or [default], plus the
	// appended firewall-multi-nic for the firewall machine.
	Profiles []string
	// ProfilesSet is true when the PSOT wrote profiles or anklume appended
	// one (host_vars writes instance_profiles then).
	ProfilesSet bool
	// Config is the user config (Incus strings, in order) followed by the
	// generated limits: limits.cpu or limits.cpu.allowance, limits.memory,
	// limits.memory.enforce (SPEC.md §6.5).
	Config KV
	// ConfigSet is true when the PSOT wrote config.
	ConfigSet bool
	// Devices holds, in this order, the sv- devices, the pd- devices, the
	// storage-volume devices, the generated gpu device and the user devices
	// (SPEC.md §4.11, §5.6). eth0 is not included: see InstanceDevices.
	Devices Devices
	// DevicesSet is true when the PSOT wrote devices.
	DevicesSet bool
	// StorageVolumes in declaration order.
	StorageVolumes []StorageVolume
	// StorageVolumesSet is true when the PSOT wrote storage_volumes.
	StorageVolumesSet bool
	// Roles in order; RolesSet is true when the PSOT wrote roles.
	Roles    []string
	RolesSet bool
	// Weight is the resource share weight (default 1).
	Weight int
	// GPU is the gpu flag; GPUSet is true when the PSOT wrote it.
	GPU    bool
	GPUSet bool
	// GPUAccess is true when the machine has gpu: true or a device of
	// type gpu, its own or from one of its profiles.
	GPUAccess bool
	// BootAutostart and BootPriority are nil when unset.
	BootAutostart *bool
	BootPriority  *int
	// SnapshotsSchedule and SnapshotsExpiry are "" when unset. The expiry
	// is after the W19 rewrite.
	SnapshotsSchedule string
	SnapshotsExpiry   string
	// Target is the machine's domain's Target (a member name or
	// "@<group>"), "" when the domain has none: a machine-level target
	// can only repeat its domain's (validation).
	Target string
	// PersistentData in declaration order.
	PersistentData []PersistentData
	// IsFirewall is true for the firewall machine (firewall_mode vm).
	IsFirewall bool
	// AutoCreated is true for the machine anklume added (SPEC.md §4.7).
	AutoCreated bool
}

// IncusType returns "container" or "virtual-machine".
func (m *Machine) IncusType() string {
	if m.Type == VM {
		return "virtual-machine"
	}
	return "container"
}

// HostVarsDevices returns the devices host_vars writes as
// instance_devices: sv-, pd-, then user devices (SPEC.md §6.5).
func (m *Machine) HostVarsDevices() Devices {
	var out Devices
	for _, d := range m.Devices {
		switch d.Origin {
		case SharedVolumeDevice, PersistentDataDevice, UserDevice:
			out = append(out, d)
		}
	}
	return out
}

// InstanceDevices returns the instance devices of SPEC.md §5.6: eth0 when
// the machine has an IP, then Devices. The firewall machine's eth0 keeps
// only security.mac_filtering (§4.7).
func (m *Machine) InstanceDevices() Devices {
	if !m.IP.IsValid() || m.Domain == nil {
		return append(Devices(nil), m.Devices...)
	}
	eth0 := KV{
		{Key: "type", Value: "nic"},
		{Key: "network", Value: m.Domain.Bridge},
		{Key: "name", Value: "eth0"},
		{Key: "ipv4.address", Value: m.IP.String()},
		{Key: "security.mac_filtering", Value: "true"},
	}
	if !m.IsFirewall {
		eth0 = append(eth0,
			Pair{Key: "security.ipv4_filtering", Value: "true"},
			Pair{Key: "security.ipv6_filtering", Value: "true"})
	}
	out := Devices{{Name: "eth0", Props: eth0, Origin: NICDevice}}
	return append(out, m.Devices...)
}

// InstanceConfig returns the instance config anklume sends, without the
// user.anklume.* ownership keys (the back ends add those, §5.1). Merge
// order: the user config with the generated limits (Config), then
// boot.autostart, boot.autostart.priority, snapshots.schedule,
// snapshots.expiry (each only when the machine sets it, §9.8) and
// security.protection.delete (always, §4.6). An anklume key that the user
// config also sets takes anklume's value and keeps the user's position.
func (m *Machine) InstanceConfig() KV {
	out := m.Config.Clone()
	if m.BootAutostart != nil {
		out = out.Set("boot.autostart", strconv.FormatBool(*m.BootAutostart))
	}
	if m.BootPriority != nil {
		out = out.Set("boot.autostart.priority", strconv.Itoa(*m.BootPriority))
	}
	if m.SnapshotsSchedule != "" {
		out = out.Set("snapshots.schedule", m.SnapshotsSchedule)
	}
	if m.SnapshotsExpiry != "" {
		out = out.Set("snapshots.expiry", m.SnapshotsExpiry)
	}
	return out.Set("security.protection.delete", strconv.FormatBool(m.Protected))
}

// Endpoint kinds of a policy.
const (
	// HostEndpoint is the Incus host.
	HostEndpoint = "host"
	// DomainEndpoint names a domain.
	DomainEndpoint = "domain"
	// MachineEndpoint names a machine.
	MachineEndpoint = "machine"
)

// Endpoint is a resolved policy end.
type Endpoint struct {
	// Name is the name as written ("host", a domain or a machine).
	Name string
	// Kind is HostEndpoint, DomainEndpoint or MachineEndpoint.
	Kind string
	// Domain is the endpoint's domain (the machine's domain for a machine),
	// nil for the host.
	Domain *Domain
	// Machine is set for a machine endpoint.
	Machine *Machine
	// IP is the machine's IP for a machine endpoint; invalid otherwise.
	IP netip.Addr
}

// Policy is one resolved network policy.
type Policy struct {
	// Index is the 0-based position in Infra.Policies.
	Index int
	// Pos is the position of the policy entry (none for the auto policy).
	Pos diag.Pos
	// Auto is true for the AI auto-policy (SPEC.md §4.8).
	Auto        bool
	Description string
	From, To    Endpoint
	// AllPorts is true for ports "all" (the default).
	AllPorts bool
	// Ports is the port list as written (duplicates kept); see
	// UniquePorts.
	Ports []int
	// Protocol is "tcp" (default) or "udp".
	Protocol string
	// Bidirectional emits the mirrored rule as well.
	Bidirectional bool
	// Keys lists the keys the PSOT wrote, in order, x- keys removed (the
	// auto policy lists description, from, to, ports and bidirectional).
	Keys []string
}

// UniquePorts returns the ports in declared order with duplicates dropped.
func (p *Policy) UniquePorts() []int {
	seen := make(map[int]bool, len(p.Ports))
	var out []int
	for _, x := range p.Ports {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// TouchesDisabled reports whether an endpoint is a disabled domain or a
// machine of one.
func (p *Policy) TouchesDisabled() bool {
	for _, e := range []Endpoint{p.From, p.To} {
		if e.Domain != nil && !e.Domain.Enabled {
			return true
		}
	}
	return false
}

// Consumer is one consumers entry of a shared volume, as written.
type Consumer struct {
	Name string
	// Access is "ro" or "rw".
	Access string
	// IsDomain is true when Name is read as a domain (W11: a domain wins).
	IsDomain bool
}

// Mount is a shared volume resolved for one machine.
type Mount struct {
	Machine  *Machine
	ReadOnly bool
}

// SharedVolume is one resolved shared volume (SPEC.md §2.10, §4.11).
type SharedVolume struct {
	Name      string
	Source    string
	Path      string
	Shift     bool // always false once valid: see package internal/hostdirs
	Propagate bool
	Consumers []Consumer
	// Mounts are the machines that get the sv- device, in machine
	// declaration order.
	Mounts []Mount
}

// Build finishes an Infra: it indexes domains and machines by name. It is
// called once by resolve.
func (m *Infra) Build() {
	m.domainIdx = make(map[string]*Domain, len(m.Domains))
	m.machineIdx = make(map[string]*Machine, len(m.Machines))
	for _, d := range m.Domains {
		m.domainIdx[d.Name] = d
	}
	for _, x := range m.Machines {
		if _, dup := m.machineIdx[x.Name]; !dup {
			m.machineIdx[x.Name] = x
		}
	}
}

// Domain returns the domain named name, or nil.
func (m *Infra) Domain(name string) *Domain {
	if m == nil {
		return nil
	}
	if m.domainIdx == nil {
		for _, d := range m.Domains {
			if d.Name == name {
				return d
			}
		}
		return nil
	}
	return m.domainIdx[name]
}

// Machine returns the machine named name, or nil.
func (m *Infra) Machine(name string) *Machine {
	if m == nil {
		return nil
	}
	if m.machineIdx == nil {
		for _, x := range m.Machines {
			if x.Name == name {
				return x
			}
		}
		return nil
	}
	return m.machineIdx[name]
}

// FirewallProfile returns the generated firewall-multi-nic profile, or nil
// when firewall_mode is not vm.
func (m *Infra) FirewallProfile() *Profile {
	if m == nil || m.Firewall == nil || m.Firewall.Domain == nil {
		return nil
	}
	return m.Firewall.Domain.FirewallProfile
}

// EnabledDomains returns the enabled domains in declaration order.
func (m *Infra) EnabledDomains() []*Domain {
	if m == nil {
		return nil
	}
	var out []*Domain
	for _, d := range m.Domains {
		if d.Enabled {
			out = append(out, d)
		}
	}
	return out
}

// Summary returns the counts printed by `anklume validate`: enabled
// domains, their machines, and the policies after resolution.
func (m *Infra) Summary() (domains, machines, policies int) {
	if m == nil {
		return 0, 0, 0
	}
	for _, d := range m.EnabledDomains() {
		domains++
		machines += len(d.Machines)
	}
	return domains, machines, len(m.Policies)
}

// DomainNames returns the names of every domain, in order, for "did you
// mean" hints and completion.
func (m *Infra) DomainNames() []string {
	out := make([]string, 0, len(m.Domains))
	for _, d := range m.Domains {
		out = append(out, d.Name)
	}
	return out
}

// MachineNames returns the names of every machine, domain by domain.
func (m *Infra) MachineNames() []string {
	var out []string
	for _, d := range m.Domains {
		for _, x := range d.Machines {
			out = append(out, x.Name)
		}
	}
	return out
}
