package incus

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/anklume/anklume/compiler/model"
)

// allow is the value of every derived restricted.* key.
const allow = "allow"

// Truthy reports whether an Incus string reads as true (SPEC.md §2.2
// item 9): true, 1, yes or on, in any case.
func Truthy(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// isInterceptionKey reports whether k is one of the seven keys that
// restricted.containers.interception governs (§5.3).
func isInterceptionKey(k string) bool {
	switch k {
	case "security.syscalls.intercept.bpf",
		"security.syscalls.intercept.bpf.devices",
		"security.syscalls.intercept.mknod",
		"security.syscalls.intercept.mount",
		"security.syscalls.intercept.mount.fuse",
		"security.syscalls.intercept.setxattr",
		"security.syscalls.intercept.sysinfo":
		return true
	}
	return false
}

// isContainerLowLevel reports whether k is a container low-level key
// (§5.3, restricted.containers.lowlevel).
func isContainerLowLevel(k string) bool {
	switch k {
	case "boot.host_shutdown_action", "boot.host_shutdown_timeout",
		"linux.kernel_modules", "limits.memory.swap", "limits.memory.oom_priority",
		"security.guestapi.images", "security.idmap.base", "security.idmap.size":
		return true
	}
	return strings.HasPrefix(k, "raw.") ||
		strings.HasPrefix(k, "security.bpffs") ||
		(strings.HasPrefix(k, "security.syscalls.intercept.") && !isInterceptionKey(k))
}

// isVMLowLevel reports whether k is a VM low-level key (§5.3,
// restricted.virtual-machines.lowlevel).
func isVMLowLevel(k string) bool {
	switch k {
	case "limits.memory.hugepages", "limits.memory.oom_priority", "raw.apparmor", "raw.idmap":
		return true
	}
	return strings.HasPrefix(k, "boot.host_shutdown_") || strings.HasPrefix(k, "raw.qemu")
}

// isPlainDeviceRow reports whether t is a device type whose use sets
// restricted.devices.<t> (§5.3); gpu has its own rule.
func isPlainDeviceRow(t string) bool {
	switch t {
	case "usb", "pci", "proxy", "unix-char", "unix-block", "unix-hotplug", "infiniband":
		return true
	}
	return false
}

// deriver accumulates the restricted.* keys of one project.
type deriver struct {
	m      *model.Infra
	d      *model.Domain
	keys   map[string]string
	access map[string]bool
	paths  map[string]bool
}

// config applies the config rows to kv. container and vm select the rows
// that kv counts for: a container's, a VM's, or both for a profile.
func (r *deriver) config(kv model.KV, container, vm bool) {
	for _, p := range kv {
		k, v := p.Key, p.Value
		if container {
			switch {
			case k == "security.nesting" && Truthy(v):
				r.keys["restricted.containers.nesting"] = allow
			case k == "security.privileged" && Truthy(v):
				r.keys["restricted.containers.privilege"] = allow
			case k == "security.syscalls.intercept.mount.fuse" && v != "",
				isInterceptionKey(k) && Truthy(v):
				r.keys["restricted.containers.interception"] = allow
			}
			if isContainerLowLevel(k) {
				r.keys["restricted.containers.lowlevel"] = allow
			}
		}
		if vm && isVMLowLevel(k) {
			r.keys["restricted.virtual-machines.lowlevel"] = allow
		}
	}
}

// devices applies the device rows to ds.
func (r *deriver) devices(ds model.Devices) {
	for _, dev := range ds {
		t := dev.Type()
		switch {
		case t == "gpu":
			r.keys["restricted.devices.gpu"] = allow
		case isPlainDeviceRow(t):
			r.keys["restricted.devices."+t] = allow
		case t == "nic":
			if n, _ := dev.Props.Get("network"); n != "" {
				continue
			}
			r.keys["restricted.devices.nic"] = allow
			if parent, _ := dev.Props.Get("parent"); parent != "" {
				r.access[parent] = true
			}
		case t == "disk":
			src, _ := dev.Props.Get("source")
			if !strings.HasPrefix(src, "/") {
				continue
			}
			r.keys["restricted.devices.disk"] = allow
			if dev.Origin == model.PersistentDataDevice {
				r.paths[r.m.Global.PersistentDataBase+"/"+r.d.Name] = true
			} else {
				r.paths[src] = true
			}
		}
	}
}

// joinSorted returns the keys of set sorted byte-wise, joined by commas.
func joinSorted(set map[string]bool) string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// restrictions returns the fixed and derived project keys of d (§5.3):
// features.*, restricted and every restricted.* key, without the
// ownership keys. Every machine of d, every domain profile and the
// firewall-multi-nic profile count, whether or not a machine uses them;
// a profile's config counts for both the container and the VM rows. The
// default profile (a managed NIC and a pool-backed root disk) derives
// nothing.
func restrictions(m *model.Infra, d *model.Domain) map[string]string {
	r := &deriver{
		m: m,
		d: d,
		keys: map[string]string{
			"features.images":          "false",
			"features.profiles":        "true",
			"features.storage.volumes": "true",
			"features.networks":        "false",
			"restricted":               "true",
			"restricted.snapshots":     allow,
			"restricted.backups":       allow,
		},
		access: map[string]bool{d.Bridge: true},
		paths:  map[string]bool{},
	}
	if m.Firewall != nil && m.Firewall.Domain == d {
		for _, e := range m.EnabledDomains() {
			r.access[e.Bridge] = true
		}
	}
	for _, x := range d.Machines {
		r.config(x.InstanceConfig(), x.Type != model.VM, x.Type == model.VM)
		r.devices(x.InstanceDevices())
		if x.GPU {
			r.keys["restricted.devices.gpu"] = allow
		}
		if x.Target != "" {
			r.keys["restricted.cluster.target"] = allow
		}
	}
	ps := append([]*model.Profile(nil), d.Profiles...)
	if d.FirewallProfile != nil {
		ps = append(ps, d.FirewallProfile)
	}
	for _, p := range ps {
		r.config(p.Config, true, true)
		r.devices(p.Devices)
	}
	r.keys["restricted.networks.access"] = joinSorted(r.access)
	if len(r.paths) > 0 {
		r.keys["restricted.devices.disk.paths"] = joinSorted(r.paths)
	}
	return r.keys
}

// PolicyRecord is one entry of user.anklume.policies (§5.1), encoded as
// compact JSON with the fields in this order. Ports is the string "all"
// or the list of ports as written (duplicates kept), Description is ""
// when absent, From and To are the endpoint names as written.
type PolicyRecord struct {
	Index         int    `json:"index"`
	Auto          bool   `json:"auto"`
	Description   string `json:"description"`
	From          string `json:"from"`
	To            string `json:"to"`
	Ports         any    `json:"ports"`
	Protocol      string `json:"protocol"`
	Bidirectional bool   `json:"bidirectional"`
}

// policyDomain returns the domain whose project records p: the from side,
// or the to side for a policy from the host; nil when neither names a
// domain.
func policyDomain(p *model.Policy) *model.Domain {
	if p.From.Kind == model.HostEndpoint {
		return p.To.Domain
	}
	return p.From.Domain
}

// Policies returns the records of the policies that the project of d
// holds (§5.1), in declaration order: those whose from side is d or one of
// its machines, and those from the host to d or one of its machines.
// Policies naming a disabled domain, or a machine of one, are left out.
func Policies(m *model.Infra, d *model.Domain) []PolicyRecord {
	var out []PolicyRecord
	for _, p := range m.Policies {
		if p.TouchesDisabled() || policyDomain(p) != d {
			continue
		}
		var ports any = "all"
		if !p.AllPorts {
			ports = append([]int{}, p.Ports...)
		}
		out = append(out, PolicyRecord{
			Index:         p.Index,
			Auto:          p.Auto,
			Description:   p.Description,
			From:          p.From.Name,
			To:            p.To.Name,
			Ports:         ports,
			Protocol:      p.Protocol,
			Bidirectional: p.Bidirectional,
		})
	}
	return out
}

// policiesJSON returns the value of user.anklume.policies for d, "" when
// the project holds no policy. HTML characters are not escaped, so a
// description reads as written.
func policiesJSON(m *model.Infra, d *model.Domain) string {
	recs := Policies(m, d)
	if len(recs) == 0 {
		return ""
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(recs); err != nil {
		return "" // unreachable: records hold only strings, ints and bools
	}
	return strings.TrimSuffix(b.String(), "\n")
}
