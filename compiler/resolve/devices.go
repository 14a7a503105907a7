package resolve

import (
	"sort"
	"strconv"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/compiler/model"
)

// gpuDevices marks GPU access and decides which machines get the
// generated `gpu` device (§4.10). A user device named gpu of another type
// is a collision, reported with the V21 message.
func (r *resolver) gpuDevices() {
	for _, x := range r.m.Machines {
		has := hasGPUDevice(x.Devices)
		for _, p := range x.Profiles {
			if prof := x.Domain.Profile(p); prof != nil && hasGPUDevice(prof.Devices) {
				has = true
			}
		}
		x.GPUAccess = x.GPU || has
		if !x.GPU || has {
			continue
		}
		if x.Devices.Get("gpu") != nil {
			pos, path := x.Pos, r.machs[x].path.Key("devices").Key("gpu")
			if e := r.machs[x].node.Val("devices").Get("gpu"); e != nil {
				pos = e.KeyPos
			}
			r.dl.Errorf(pos, path.String(), "", "generated device \"gpu\" collides with a device of the same name in devices")
			continue
		}
		r.genGPU[x] = true
		if x.Domain.Enabled {
			r.dl.Infof("machine %q has gpu: true and no GPU device; added device gpu (type gpu)", x.Name)
		}
	}
}

func hasGPUDevice(ds model.Devices) bool {
	for _, d := range ds {
		if d.Type() == "gpu" {
			return true
		}
	}
	return false
}

// isFirewallName reports whether a machine name designates the firewall VM.
func isFirewallName(n string) bool { return n == model.FirewallMachineName || n == "sys-firewall" }

// firewall adds the firewall VM and its firewall-multi-nic profile when
// firewall_mode is vm (§4.7). No anklume domain and no declared firewall
// machine is N21.
func (r *resolver) firewall() {
	if r.m.Global.FirewallMode != "vm" {
		return
	}
	modePos := diag.Pos{}
	if n := r.global().Val("firewall_mode"); n != nil {
		modePos = n.Pos
	}
	var fw *model.Machine
	for _, x := range r.m.Machines {
		if isFirewallName(x.Name) {
			fw = x
			break
		}
	}
	if fw == nil {
		var home *model.Domain
		for _, d := range r.m.Domains {
			if d.Name == "anklume" {
				home = d
			}
		}
		if home == nil {
			r.dl.Errorf(modePos, diag.Path("").Key("global").Key("firewall_mode").String(),
				`add an "anklume" domain or declare a machine named anklume-firewall`,
				`firewall_mode is "vm" but no "anklume" domain exists`)
			return
		}
		fw = &model.Machine{
			Name:        model.FirewallMachineName,
			Pos:         modePos,
			Instance:    r.m.Prefix + model.FirewallMachineName,
			Domain:      home,
			Description: "Centralized firewall VM (auto-created by anklume)",
			Type:        model.VM,
			IPExplicit:  true,
			Ephemeral:   false,
			Protected:   true,
			State:       "running",
			Image:       r.image(""),
			Profiles:    []string{"default"},
			ProfilesSet: true,
			Config: model.KV{
				{Key: "limits.cpu", Value: "2"},
				{Key: "limits.memory", Value: "2GiB"},
			},
			ConfigSet:    true,
			Roles:        []string{"base_system", "firewall_router"},
			RolesSet:     true,
			Weight:       1,
			EphemeralSet: true,
			AutoCreated:  true,
		}
		if home.Subnet.IsValid() {
			fw.IP = home.Host(253)
		}
		home.Machines = append(home.Machines, fw)
		r.machs[fw] = &machSrc{path: diag.Path("").Key("domains").Key(home.Name).Key("machines").Key(fw.Name)}
		r.m.Machines = r.m.Machines[:0]
		for _, d := range r.m.Domains {
			r.m.Machines = append(r.m.Machines, d.Machines...)
		}
		r.dl.Infof("firewall_mode is \"vm\": added anklume-firewall to domain anklume (ip %s)", fw.IP)
	}
	fw.IsFirewall = true
	r.m.Firewall = fw

	var others []*model.Domain
	for _, d := range r.m.Domains {
		if d.Enabled && d != fw.Domain {
			others = append(others, d)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].Bridge < others[j].Bridge })
	prof := &model.Profile{Name: model.FirewallProfileName, Description: "anklume firewall VM NICs", Generated: true}
	for k, d := range others {
		name := "eth" + strconv.Itoa(k+1)
		props := model.KV{
			{Key: "type", Value: "nic"},
			{Key: "network", Value: d.Bridge},
			{Key: "name", Value: name},
		}
		if d.Subnet.IsValid() {
			props = append(props, model.Pair{Key: "ipv4.address", Value: d.Host(253).String()})
		}
		prof.Devices = append(prof.Devices, model.Device{Name: name, Props: props, Origin: model.NICDevice})
	}
	fw.Domain.FirewallProfile = prof
	listed := false
	for _, p := range fw.Profiles {
		if p == model.FirewallProfileName {
			listed = true
		}
	}
	if !listed {
		fw.Profiles = append(append([]string(nil), fw.Profiles...), model.FirewallProfileName)
		fw.ProfilesSet = true
	}
}

// The sv- and pd- devices of containers never carry `shift` (a
// deliberate difference from SPEC.md §4.11). Every anklume project sets
// restricted.devices.disk.paths (least privilege: a domain reaches only
// the host paths it declares), and Incus 6.0 refuses to start an instance
// whose disk combines `shift` with a restricted source path. Instead,
// apply creates the directories owned by the containers' root (package
// internal/hostdirs), so unprivileged containers, which share one id map,
// use them as they are. `shift: true` in shared_volumes is a validation
// error; `shift: false` states what happens.

// sharedVolumes resolves shared_volumes per machine (§4.11): a domain
// consumer expands to its machines, a machine entry overrides it.
func (r *resolver) sharedVolumes() {
	gl := r.m.Global
	for _, e := range entries(r.root.Val("shared_volumes")) {
		vn := e.Value
		sv := &model.SharedVolume{
			Name:      e.Key,
			Source:    str(vn, "source", gl.SharedVolumesBase+"/"+e.Key),
			Path:      str(vn, "path", "/shared/"+e.Key),
			Shift:     boolean(vn, "shift", false),
			Propagate: boolean(vn, "propagate", false),
		}
		access := map[*model.Machine]string{}
		var machineEntries []model.Consumer
		for _, c := range entries(vn.Val("consumers")) {
			cons := model.Consumer{Name: c.Key, Access: scalarText(c.Value, "")}
			if d := r.domainByName(c.Key); d != nil {
				cons.IsDomain = true
				for _, x := range d.Machines {
					access[x] = cons.Access
				}
			} else {
				machineEntries = append(machineEntries, cons)
			}
			sv.Consumers = append(sv.Consumers, cons)
		}
		for _, cons := range machineEntries {
			if x := r.machineByName(cons.Name); x != nil {
				access[x] = cons.Access
			}
		}
		for _, x := range r.m.Machines {
			acc, ok := access[x]
			if !ok {
				continue
			}
			ro := acc == "ro"
			sv.Mounts = append(sv.Mounts, model.Mount{Machine: x, ReadOnly: ro})
			props := model.KV{
				{Key: "type", Value: "disk"},
				{Key: "source", Value: sv.Source},
				{Key: "path", Value: sv.Path},
			}
			if ro {
				props = append(props, model.Pair{Key: "readonly", Value: "true"})
			}
			r.svDevices[x] = append(r.svDevices[x], model.Device{Name: "sv-" + sv.Name, Props: props, Origin: model.SharedVolumeDevice})
		}
		r.m.SharedVolumes = append(r.m.SharedVolumes, sv)
	}
}

func (r *resolver) domainByName(n string) *model.Domain {
	for _, d := range r.m.Domains {
		if d.Name == n {
			return d
		}
	}
	return nil
}

func (r *resolver) machineByName(n string) *model.Machine {
	for _, x := range r.m.Machines {
		if x.Name == n {
			return x
		}
	}
	return nil
}

// assembleDevices builds each machine's device list in the order of
// §4.11 and §5.6: sv-, pd-, storage-volume devices, gpu, user devices.
func (r *resolver) assembleDevices() {
	for _, x := range r.m.Machines {
		var out model.Devices
		out = append(out, r.svDevices[x]...)
		for _, pd := range x.PersistentData {
			props := model.KV{
				{Key: "type", Value: "disk"},
				{Key: "source", Value: pd.Source},
				{Key: "path", Value: pd.Path},
			}
			if pd.ReadOnly {
				props = append(props, model.Pair{Key: "readonly", Value: "true"})
			}
			out = append(out, model.Device{Name: "pd-" + pd.Name, Props: props, Origin: model.PersistentDataDevice})
		}
		for _, sv := range x.StorageVolumes {
			if sv.Path == "" {
				continue
			}
			out = append(out, model.Device{Name: sv.Name, Origin: model.StorageVolumeDevice, Props: model.KV{
				{Key: "type", Value: "disk"},
				{Key: "pool", Value: sv.ResolvedPool},
				{Key: "source", Value: sv.Name},
				{Key: "path", Value: sv.Path},
			}})
		}
		if r.genGPU[x] {
			out = append(out, model.Device{Name: "gpu", Origin: model.GPUDevice, Props: model.KV{{Key: "type", Value: "gpu"}}})
		}
		out = append(out, x.Devices...)
		x.Devices = out
	}
}

// policies resolves network_policies and appends the AI auto-policy
// (§4.8).
func (r *resolver) policies() {
	pl := r.root.Val("network_policies")
	if pl != nil && pl.Kind == load.Seq {
		for _, pn := range pl.Items {
			if pn == nil || pn.Kind != load.Map {
				continue
			}
			p := &model.Policy{
				Pos:           pn.Pos,
				Description:   str(pn, "description", ""),
				From:          r.endpoint(str(pn, "from", "")),
				To:            r.endpoint(str(pn, "to", "")),
				AllPorts:      true,
				Protocol:      str(pn, "protocol", "tcp"),
				Bidirectional: boolean(pn, "bidirectional", false),
				Keys:          writtenKeys(pn),
			}
			if ports := pn.Val("ports"); ports != nil && ports.Kind == load.Seq {
				p.AllPorts = false
				p.Ports = []int{}
				for _, it := range ports.Items {
					if v, ok := it.Int(); ok {
						p.Ports = append(p.Ports, int(v))
					}
				}
			}
			r.addPolicy(p)
		}
	}
	gl := r.m.Global
	if gl.AIAccessPolicy != "exclusive" || gl.AIAccessDefault == "" || r.domainByName("ai-tools") == nil {
		return
	}
	for _, p := range r.m.Policies {
		if p.To.Name == "ai-tools" {
			return
		}
	}
	r.addPolicy(&model.Policy{
		Auto:        true,
		Description: "AI access: " + gl.AIAccessDefault + " -> ai-tools (auto-created)",
		From:        r.endpoint(gl.AIAccessDefault),
		To:          r.endpoint("ai-tools"),
		AllPorts:    true,
		Protocol:    "tcp",
		Keys:        []string{"description", "from", "to", "ports", "bidirectional"},
	})
}

func (r *resolver) addPolicy(p *model.Policy) {
	p.Index = len(r.m.Policies)
	r.m.Policies = append(r.m.Policies, p)
}

// endpoint resolves a policy end: host, a domain (which wins over a
// machine of the same name, W11) or a machine.
func (r *resolver) endpoint(name string) model.Endpoint {
	e := model.Endpoint{Name: name}
	if name == model.HostEndpoint {
		e.Kind = model.HostEndpoint
		return e
	}
	if d := r.domainByName(name); d != nil {
		e.Kind, e.Domain = model.DomainEndpoint, d
		return e
	}
	if x := r.machineByName(name); x != nil {
		e.Kind, e.Domain, e.Machine, e.IP = model.MachineEndpoint, x.Domain, x, x.IP
	}
	return e
}
