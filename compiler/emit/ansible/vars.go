package ansible

import (
	"sort"
	"strconv"

	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
)

// AllVars returns the content of group_vars/all.yml (SPEC.md §6.5):
// project_name; addressing (zone mode, the user's mapping) or base_subnet
// (legacy mode); default_os_image; psot_default_connection and
// psot_default_user when set; incus_all_images and network_policies when
// non-empty.
func AllVars(m *model.Infra) yamlw.Map {
	g := m.Global
	out := yamlw.Map{{Key: "project_name", Value: yamlw.Str(m.ProjectName)}}
	if m.Addressing == model.ZoneMode {
		out = append(out, yamlw.KV{Key: "addressing", Value: kvMap(g.AddressingKeys)})
	} else {
		out = append(out, yamlw.KV{Key: "base_subnet", Value: yamlw.Str(g.BaseSubnet)})
	}
	out = append(out, yamlw.KV{Key: "default_os_image", Value: yamlw.Str(g.DefaultOSImage)})
	if g.DefaultConnection != "" {
		out = append(out, yamlw.KV{Key: "psot_default_connection", Value: yamlw.Str(g.DefaultConnection)})
	}
	if g.DefaultUser != "" {
		out = append(out, yamlw.KV{Key: "psot_default_user", Value: yamlw.Str(g.DefaultUser)})
	}
	if images := allImages(m); len(images) > 0 {
		l := make(yamlw.List, len(images))
		for i, img := range images {
			l[i] = yamlw.Str(img)
		}
		out = append(out, yamlw.KV{Key: "incus_all_images", Value: l})
	}
	if len(m.Policies) > 0 {
		l := make(yamlw.List, len(m.Policies))
		for i, p := range m.Policies {
			l[i] = policy(p)
		}
		out = append(out, yamlw.KV{Key: "network_policies", Value: l})
	}
	return out
}

// allImages returns the resolved images of every machine of an enabled
// domain, sorted byte-wise and de-duplicated.
func allImages(m *model.Infra) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			if x.Image != "" && !seen[x.Image] {
				seen[x.Image] = true
				out = append(out, x.Image)
			}
		}
	}
	sort.Strings(out)
	return out
}

// policy writes one resolved policy with the keys its PSOT entry wrote, in
// the written order (x- keys are already gone from Policy.Keys).
func policy(p *model.Policy) yamlw.Map {
	var out yamlw.Map
	for _, k := range p.Keys {
		var v yamlw.Value
		switch k {
		case "description":
			v = yamlw.Str(p.Description)
		case "from":
			v = yamlw.Str(p.From.Name)
		case "to":
			v = yamlw.Str(p.To.Name)
		case "ports":
			if p.AllPorts {
				v = yamlw.Str("all")
			} else {
				l := make(yamlw.List, len(p.Ports))
				for i, port := range p.Ports {
					l[i] = yamlw.Int(port)
				}
				v = l
			}
		case "protocol":
			v = yamlw.Str(p.Protocol)
		case "bidirectional":
			v = yamlw.Bool(p.Bidirectional)
		default:
			continue
		}
		out = append(out, yamlw.KV{Key: k, Value: v})
	}
	return out
}

// GroupVars returns the content of group_vars/<d>.yml (SPEC.md §6.5).
func GroupVars(d *model.Domain) yamlw.Map {
	out := yamlw.Map{
		{Key: "domain_name", Value: yamlw.Str(d.Name)},
		{Key: "domain_description", Value: yamlw.Str(d.Description)},
		{Key: "domain_ephemeral", Value: yamlw.Bool(d.Ephemeral)},
	}
	if d.TrustLevel != "" {
		out = append(out, yamlw.KV{Key: "domain_trust_level", Value: yamlw.Str(d.TrustLevel)})
	}
	// ai_sanitize is a boolean, or the string "always".
	var sanitize yamlw.Value = yamlw.Str(d.AISanitize)
	if d.AISanitize == "true" || d.AISanitize == "false" {
		sanitize = yamlw.Bool(d.AISanitize == "true")
	}
	out = append(out,
		yamlw.KV{Key: "domain_ai_provider", Value: yamlw.Str(d.AIProvider)},
		yamlw.KV{Key: "domain_ai_sanitize", Value: sanitize},
		yamlw.KV{Key: "incus_project", Value: yamlw.Str(d.Project)},
		yamlw.KV{Key: "incus_network", Value: yamlw.Map{
			{Key: "name", Value: yamlw.Str(d.Bridge)},
			{Key: "subnet", Value: yamlw.Str(d.CIDR())},
			{Key: "gateway", Value: yamlw.Str(d.Gateway.String())},
		}},
		yamlw.KV{Key: "subnet_id", Value: yamlw.Int(d.Seq)},
	)
	if len(d.Profiles) > 0 {
		profiles := make(yamlw.Map, 0, len(d.Profiles))
		for _, p := range d.Profiles {
			profiles = append(profiles, yamlw.KV{Key: p.Name, Value: profile(p)})
		}
		out = append(out, yamlw.KV{Key: "incus_profiles", Value: profiles})
	}
	return out
}

// profile writes a domain profile as written: its keys in the PSOT's
// order, values with the YAML kind they were written with.
func profile(p *model.Profile) yamlw.Map {
	out := yamlw.Map{}
	for _, k := range p.Keys {
		switch k {
		case "description":
			out = append(out, yamlw.KV{Key: k, Value: yamlw.Str(p.Description)})
		case "config":
			out = append(out, yamlw.KV{Key: k, Value: kvMap(p.Config)})
		case "devices":
			out = append(out, yamlw.KV{Key: k, Value: devicesMap(p.Devices)})
		}
	}
	return out
}

// HostVars returns the content of host_vars/<m>.yml (SPEC.md §6.5). The
// optional keys are written only when the PSOT sets them or something is
// generated for them; a value the PSOT gives explicitly is written even
// when it is empty or false.
func HostVars(x *model.Machine) yamlw.Map {
	out := yamlw.Map{
		{Key: "instance_name", Value: yamlw.Str(x.Instance)},
		{Key: "instance_type", Value: yamlw.Str(x.Type)},
		{Key: "instance_description", Value: yamlw.Str(x.Description)},
		{Key: "instance_domain", Value: yamlw.Str(x.Domain.Name)},
		{Key: "instance_ephemeral", Value: yamlw.Bool(x.Ephemeral)},
		{Key: "instance_os_image", Value: yamlw.Str(x.Image)},
	}
	add := func(k string, v yamlw.Value) { out = append(out, yamlw.KV{Key: k, Value: v}) }
	if x.IP.IsValid() {
		add("instance_ip", yamlw.Str(x.IP.String()))
	}
	if x.GPUSet {
		add("instance_gpu", yamlw.Bool(x.GPU))
	}
	if x.ProfilesSet {
		add("instance_profiles", strList(x.Profiles))
	}
	if x.ConfigSet || len(x.Config) > 0 {
		add("instance_config", kvMap(x.Config))
	}
	if devs := x.HostVarsDevices(); x.DevicesSet || len(devs) > 0 {
		add("instance_devices", devicesMap(devs))
	}
	if x.StorageVolumesSet {
		vols := yamlw.Map{}
		for _, v := range x.StorageVolumes {
			vm := yamlw.Map{}
			if v.Pool != "" {
				vm = append(vm, yamlw.KV{Key: "pool", Value: yamlw.Str(v.Pool)})
			}
			if v.Size != "" {
				vm = append(vm, yamlw.KV{Key: "size", Value: yamlw.Str(v.Size)})
			}
			if v.Path != "" {
				vm = append(vm, yamlw.KV{Key: "path", Value: yamlw.Str(v.Path)})
			}
			vols = append(vols, yamlw.KV{Key: v.Name, Value: vm})
		}
		add("instance_storage_volumes", vols)
	}
	if x.RolesSet {
		add("instance_roles", strList(x.Roles))
	}
	if x.BootAutostart != nil {
		add("instance_boot_autostart", yamlw.Bool(*x.BootAutostart))
	}
	if x.BootPriority != nil {
		add("instance_boot_priority", yamlw.Int(*x.BootPriority))
	}
	if x.SnapshotsSchedule != "" {
		add("instance_snapshots_schedule", yamlw.Str(x.SnapshotsSchedule))
	}
	if x.SnapshotsExpiry != "" {
		add("instance_snapshots_expiry", yamlw.Str(x.SnapshotsExpiry))
	}
	return out
}

// Inventory returns the content of inventory/<d>.yml (SPEC.md §6.5):
// all.children.<d>.hosts.<m>.ansible_host, a null entry for a machine
// without an IP, and a null hosts for a domain without machines.
func Inventory(d *model.Domain) yamlw.Map {
	var hosts yamlw.Value = yamlw.Null{}
	if len(d.Machines) > 0 {
		hm := make(yamlw.Map, 0, len(d.Machines))
		for _, x := range d.Machines {
			var entry yamlw.Value = yamlw.Null{}
			if x.IP.IsValid() {
				entry = yamlw.Map{{Key: "ansible_host", Value: yamlw.Str(x.IP.String())}}
			}
			hm = append(hm, yamlw.KV{Key: x.Name, Value: entry})
		}
		hosts = hm
	}
	return yamlw.Map{{Key: "all", Value: yamlw.Map{
		{Key: "children", Value: yamlw.Map{
			{Key: d.Name, Value: yamlw.Map{{Key: "hosts", Value: hosts}}},
		}},
	}}}
}

// kvMap writes an ordered map of Incus strings, each value with the YAML
// kind it was written with: an integer stays an integer and a boolean a
// boolean; generated values are strings.
func kvMap(kv model.KV) yamlw.Map {
	out := make(yamlw.Map, 0, len(kv))
	for _, p := range kv {
		out = append(out, yamlw.KV{Key: p.Key, Value: scalar(p)})
	}
	return out
}

// scalar writes one Incus value with its written kind. An integer that
// does not fit in 64 bits falls back to a (quoted) string.
func scalar(p model.Pair) yamlw.Value {
	switch p.Kind {
	case model.Int:
		if i, err := strconv.ParseInt(p.Value, 10, 64); err == nil {
			return yamlw.Int(i)
		}
	case model.Bool:
		if b, err := strconv.ParseBool(p.Value); err == nil {
			return yamlw.Bool(b)
		}
	}
	return yamlw.Str(p.Value)
}

// devicesMap writes devices in order, each with its properties.
func devicesMap(ds model.Devices) yamlw.Map {
	out := make(yamlw.Map, 0, len(ds))
	for _, d := range ds {
		out = append(out, yamlw.KV{Key: d.Name, Value: kvMap(d.Props)})
	}
	return out
}

// strList writes a list of strings.
func strList(ss []string) yamlw.List {
	out := make(yamlw.List, len(ss))
	for i, s := range ss {
		out[i] = yamlw.Str(s)
	}
	return out
}
