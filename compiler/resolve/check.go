package resolve

import (
	"net/netip"
	"regexp"
	"sync"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/compiler/model"
)

// ipAnchor returns where a diagnostic about a machine's IP points: the ip
// value when it was written, else the machine name key.
func (r *resolver) ipAnchor(x *model.Machine) (diag.Pos, string) {
	src := r.machs[x]
	if src == nil {
		return x.Pos, ""
	}
	if src.ip != nil {
		return src.ip.Pos, src.path.Key("ip").String()
	}
	return x.Pos, src.path.String()
}

// checkIPs runs V13 (unique IPs, generated ones included) and V14 (an
// explicit IP lies in its domain's /24).
func (r *resolver) checkIPs() {
	owner := map[netip.Addr]*model.Machine{}
	for _, x := range r.m.Machines {
		if !x.IP.IsValid() {
			continue
		}
		pos, path := r.ipAnchor(x)
		if x.IPExplicit && x.Domain.Subnet.IsValid() && !x.Domain.Subnet.Contains(x.IP) {
			r.dl.Errorf(pos, path, "", "ip %s is not in subnet %s/24 of domain %q", x.IP, x.Domain.Network(), x.Domain.Name)
		}
		if first, dup := owner[x.IP]; dup {
			r.dl.Errorf(pos, path, "", "ip %s is already used by machine %q", x.IP, first.Name)
			continue
		}
		owner[x.IP] = x
	}
}

// checkNICs runs N26: a nic device of a machine or a domain profile whose
// network or parent is the bridge of another domain. The generated
// firewall-multi-nic profile is exempt.
func (r *resolver) checkNICs() {
	bridges := map[string]*model.Domain{}
	for _, d := range r.m.Domains {
		bridges[d.Bridge] = d
	}
	check := func(d *model.Domain, devs *load.Node, base diag.Path) {
		for _, e := range entries(devs) {
			if str(e.Value, "type", "") != "nic" {
				continue
			}
			for _, k := range []string{"network", "parent"} {
				b := str(e.Value, k, "")
				other, ok := bridges[b]
				if b == "" || !ok || other == d {
					continue
				}
				r.dl.Errorf(e.KeyPos, base.Key(e.Key).String(), "open the traffic with a network policy instead",
					"nic device %q uses the bridge %q of domain %q; a machine can only join its own domain's bridge",
					e.Key, b, other.Name)
				break
			}
		}
	}
	for _, d := range r.m.Domains {
		src := r.doms[d]
		for _, pe := range entries(src.node.Val("profiles")) {
			check(d, pe.Value.Val("devices"), src.path.Key("profiles").Key(pe.Key).Key("devices"))
		}
		for _, x := range d.Machines {
			ms := r.machs[x]
			if ms == nil || ms.node == nil {
				continue
			}
			check(d, ms.node.Val("devices"), ms.path.Key("devices"))
		}
	}
}

// skipIface matches the interfaces V31 ignores besides lo: anklume's own
// bridges, prefixed or not.
var skipIface = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]{3}-)?net-`) })

// HostSubnetIgnored reports whether V31 ignores the host interface name:
// lo and anklume's own bridges. A cache of the compiler's result keys on
// the other interfaces only.
func HostSubnetIgnored(name string) bool { return name == "lo" || skipIface().MatchString(name) }

// checkHostSubnets runs V31 on enabled domains: no domain /24 overlaps an
// address on a host interface. With --remote it is skipped with a
// warning (§2.14).
func (r *resolver) checkHostSubnets() {
	if r.opts.SkipHostSubnetCheck {
		return
	}
	if r.opts.Remote {
		r.dl.Warnf(diag.Pos{}, "", "", "--remote: the host subnet check (V31) is skipped; it can only see this machine's interfaces")
		return
	}
	hint := "choose another global.addressing.zone_base, or set ANKLUME_SKIP_HOST_SUBNET_CHECK=1"
	if r.m.Addressing == model.LegacyMode {
		hint = `choose another global.base_subnet such as "10.200"`
	}
	for _, d := range r.m.Domains {
		if !d.Enabled || !d.Subnet.IsValid() {
			continue
		}
		for _, ifc := range r.opts.Interfaces {
			if HostSubnetIgnored(ifc.Name) {
				continue
			}
			p, err := netip.ParsePrefix(ifc.CIDR)
			if err != nil || !p.Addr().Is4() || !p.Overlaps(d.Subnet) {
				continue
			}
			r.dl.Errorf(d.Pos, r.doms[d].path.String(), hint,
				"subnet conflict: %s/24 overlaps host interface %q (%s)", d.Network(), ifc.Name, ifc.CIDR)
		}
	}
}

// checkIncusNames: two objects of one kind never share an Incus-side name.
// Domain names are unique, yet a bridge name shortened to
// "net-<sha256 prefix>" (§4.5) can equal the plain bridge name of a domain
// spelled like that hash, and two long names can share a prefix of their
// hashes; both would declare one network twice and put two domains on one
// L2 segment. Projects and instances are checked the same way (their
// names are the prefix plus a unique name today; the check keeps it so).
// The error points at the later domain or machine in declaration order.
func (r *resolver) checkIncusNames() {
	type owner struct{ kind, name string }
	seen := map[[2]string]owner{}
	claim := func(kind, incus, what, name string, pos diag.Pos, path diag.Path) {
		k := [2]string{kind, incus}
		if first, dup := seen[k]; dup {
			r.dl.Errorf(pos, path.String(), "rename one of them",
				"%s %q would use Incus %s %q, which is already the %s of %s %q",
				what, name, kind, incus, kind, first.kind, first.name)
			return
		}
		seen[k] = owner{what, name}
	}
	for _, d := range r.m.Domains {
		path := diag.Path("").Key("domains").Key(d.Name)
		claim("project", d.Project, "domain", d.Name, d.Pos, path)
		claim("network", d.Bridge, "domain", d.Name, d.Pos, path)
	}
	for _, x := range r.m.Machines {
		path := diag.Path("")
		if src := r.machs[x]; src != nil {
			path = src.path
		}
		claim("instance", x.Instance, "machine", x.Name, x.Pos, path)
	}
}
