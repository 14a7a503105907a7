package resolve

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/model"
)

// zoneOffset is ZONE_OFFSET of SPEC.md §4.2.
var zoneOffset = map[string]int{
	"admin":        0,
	"trusted":      10,
	"semi-trusted": 20,
	"untrusted":    40,
	"disposable":   50,
}

// maxSeq is the largest domain_seq (third octet).
const maxSeq = 254

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// addressing computes every domain's seq, subnet and gateway: zone mode
// (§4.2) or legacy mode (§4.3).
//
// In zone mode every trust level in use must fit: zone_base + the zone's
// offset ≤ 255 (N5), reported at zone_base once per overflowing zone, and
// the overflowing domains get no subnet, so no emitter ever sees one.
func (r *resolver) addressing() {
	if r.m.Addressing == model.ZoneMode {
		r.checkZoneBase()
		r.zoneSeqs()
	}
	for _, d := range r.m.Domains {
		var a, b int
		if r.m.Addressing == model.ZoneMode {
			a, b = r.m.Global.BaseOctet, r.m.Global.ZoneBase+zoneOffset[d.TrustLevel]
		} else {
			a, b = legacyOctets(r.m.Global.BaseSubnet)
		}
		if a < 0 || a > 255 || b < 0 || b > 255 || d.Seq < 0 || d.Seq > 255 {
			continue // rejected by S1/S2 (N5, N19, V4); stay defensive
		}
		addr := netip.AddrFrom4([4]byte{byte(a), byte(b), byte(d.Seq), 0})
		d.Subnet = netip.PrefixFrom(addr, 24)
		d.Gateway = d.Host(254)
	}
}

// checkZoneBase is N5: for every trust level in use (disabled domains
// included, they keep their subnet), zone_base + offset ≤ 255.
func (r *resolver) checkZoneBase() {
	zb := r.global().Val("addressing").Val("zone_base")
	var pos diag.Pos
	path := diag.Path("").Key("global").Key("addressing").Key("zone_base")
	if zb != nil {
		pos = zb.Pos
	}
	zones := map[string]bool{}
	for _, d := range r.m.Domains {
		zones[d.TrustLevel] = true
	}
	names := make([]string, 0, len(zones))
	for t := range zones {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		if n := r.m.Global.ZoneBase + zoneOffset[t]; n > 255 {
			r.dl.Errorf(pos, path.String(), "",
				"zone %q would use second octet %d (zone_base %d + %d); the maximum is 255",
				t, n, r.m.Global.ZoneBase, zoneOffset[t])
		}
	}
}

// legacyOctets parses base_subnet "10.100"; -1 on a malformed value.
func legacyOctets(s string) (int, int) {
	parts := strings.Split(s, ".")
	if len(parts) != 2 {
		return -1, -1
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return -1, -1
	}
	return a, b
}

// zoneSeqs assigns domain_seq per trust zone: explicit subnet_id first,
// then the other domains in byte-wise order of name, skipping taken
// values. Disabled domains are included. A zone that runs out is N24.
func (r *resolver) zoneSeqs() {
	zones := map[string][]*model.Domain{}
	for _, d := range r.m.Domains {
		zones[d.TrustLevel] = append(zones[d.TrustLevel], d)
	}
	for zone, ds := range zones {
		taken := map[int]bool{}
		var auto []*model.Domain
		for _, d := range ds {
			if d.SeqExplicit {
				taken[d.Seq] = true
			} else {
				auto = append(auto, d)
			}
		}
		sort.Slice(auto, func(i, j int) bool { return auto[i].Name < auto[j].Name })
		next := 0
		for _, d := range auto {
			for taken[next] {
				next++
			}
			if next > maxSeq {
				d.Seq = -1
				r.dl.Errorf(d.Pos, r.doms[d].path.String(), "",
					"zone %q has no free subnet id left for domain %q", zone, d.Name)
				continue
			}
			d.Seq = next
			next++
		}
	}
}

// autoIPs gives each machine without ip the smallest free host number of
// its domain from .1, in declaration order (zone mode only, §4.4). Above
// .99 is N22.
func (r *resolver) autoIPs() {
	for _, d := range r.m.Domains {
		used := map[int]bool{}
		for _, x := range d.Machines {
			src := r.machs[x]
			if src.ip == nil {
				continue
			}
			ip, err := netip.ParseAddr(src.ip.Value)
			if err != nil || !ip.Is4() {
				continue
			}
			x.IP = ip
			used[int(ip.As4()[3])] = true
		}
		if r.m.Addressing != model.ZoneMode || !d.Subnet.IsValid() {
			continue
		}
		next := 1
		for _, x := range d.Machines {
			if x.IPExplicit {
				continue
			}
			for used[next] {
				next++
			}
			if next > 99 {
				r.dl.Errorf(x.Pos, r.machs[x].path.String(), "",
					"domain %q ran out of static IPs (.1-.99) for machine %q", d.Name, x.Name)
				continue
			}
			x.IP = d.Host(next)
			used[next] = true
		}
	}
}
