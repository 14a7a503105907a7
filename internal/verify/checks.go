package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/model"
)

// Check is one precondition of the isolation.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// bridgeNFChecks reads the bridge netfilter switches under dir
// (/proc/sys/net/bridge): without them, traffic inside one bridge is not
// filtered and the sysctls show the module is loaded.
func bridgeNFChecks(dir string) []Check {
	var out []Check
	for _, name := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		c := Check{Name: "net.bridge." + name + " = 1", OK: true}
		data, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case os.IsNotExist(err):
			c.OK, c.Detail = false, "absent: br_netfilter is not loaded (modprobe br_netfilter)"
		case err != nil:
			c.OK, c.Detail = false, err.Error()
		case strings.TrimSpace(string(data)) != "1":
			c.OK, c.Detail = false, "is "+strings.TrimSpace(string(data))+" (sysctl -w net.bridge."+name+"=1)"
		}
		out = append(out, c)
	}
	return out
}

// nicChecks checks the instances' NICs against the model: every machine's
// NICs on an anklume bridge carry the anti-spoofing filters anklume sets
// (security.mac_filtering, ipv4 and ipv6 filtering; the firewall VM keeps
// only the MAC filter), and no instance, anklume's or not, has a NIC on
// the bridge of a domain other than its own project's (the firewall VM's
// extra NICs excepted).
func nicChecks(m *model.Infra, insts []api.InstanceFull) []Check {
	bridgeDomain := map[string]*model.Domain{}
	for _, d := range m.Domains {
		bridgeDomain[d.Bridge] = d
	}
	machineAt := map[[2]string]*model.Machine{}
	for _, x := range m.Machines {
		machineAt[[2]string{x.Domain.Project, x.Instance}] = x
	}
	var spoof, foreign []string
	for _, in := range insts {
		x := machineAt[[2]string{in.Project, in.Name}]
		names := make([]string, 0, len(in.ExpandedDevices))
		for n := range in.ExpandedDevices {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, dev := range names {
			props := in.ExpandedDevices[dev]
			if props["type"] != "nic" {
				continue
			}
			br := props["network"]
			if br == "" {
				br = props["parent"]
			}
			d, ok := bridgeDomain[br]
			if !ok {
				continue
			}
			where := in.Project + "/" + in.Name + " " + dev
			isFW := x != nil && x.IsFirewall
			if d.Project != in.Project && !isFW {
				foreign = append(foreign, fmt.Sprintf("%s is on %s, the bridge of domain %s", where, br, d.Name))
			}
			if x == nil && d.Project != in.Project {
				continue
			}
			want := []string{"security.mac_filtering"}
			if !isFW {
				want = append(want, "security.ipv4_filtering", "security.ipv6_filtering")
			}
			var missing []string
			for _, k := range want {
				if props[k] != "true" {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				spoof = append(spoof, where+" lacks "+strings.Join(missing, ", "))
			}
		}
	}
	return []Check{
		{Name: "anti-spoofing filters on every nic", OK: len(spoof) == 0, Detail: strings.Join(spoof, "; ")},
		{Name: "no nic on another domain's bridge", OK: len(foreign) == 0, Detail: strings.Join(foreign, "; ")},
	}
}

// liveMachines returns the sampler's view of the instances and the init
// pid of each running container of the model.
func liveMachines(m *model.Infra, insts []api.InstanceFull) (Live, map[string]int) {
	live := Live{Source: map[string]bool{}, Target: map[string]bool{}}
	pids := map[string]int{}
	byKey := map[[2]string]api.InstanceFull{}
	for _, in := range insts {
		byKey[[2]string{in.Project, in.Name}] = in
	}
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			in, ok := byKey[[2]string{d.Project, x.Instance}]
			if !ok || in.Status != "Running" {
				continue
			}
			live.Target[x.Name] = true
			if in.Type == "container" && in.State != nil && in.State.Pid > 0 {
				live.Source[x.Name] = true
				pids[x.Name] = int(in.State.Pid)
			}
		}
	}
	return live, pids
}

// NotProbed is a machine of the model that cannot be a probe source.
type NotProbed struct {
	Machine string `json:"machine"`
	Reason  string `json:"reason"`
}

// notProbed lists the machines of the model that cannot be a probe source,
// with the reason.
func notProbed(m *model.Infra, live Live) []NotProbed {
	var out []NotProbed
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			switch {
			case live.Source[x.Name]:
			case !live.Target[x.Name]:
				out = append(out, NotProbed{x.Name, "not running"})
			case x.Type == model.VM:
				out = append(out, NotProbed{x.Name, "a VM: its network namespace is in its own kernel"})
			default:
				out = append(out, NotProbed{x.Name, "no init pid"})
			}
		}
	}
	return slices.Clip(out)
}
