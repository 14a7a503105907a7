package resolve

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/model"
)

const (
	kib = 1024
	mib = 1024 * kib
	gib = 1024 * mib
)

// unitBytes maps size units to bytes: 1 KiB = 1024, 1 KB = 1000 (§4.9).
var unitBytes = map[string]int64{
	"B":   1,
	"KiB": kib, "MiB": mib, "GiB": gib, "TiB": gib * 1024, "PiB": gib * 1024 * 1024, "EiB": gib * 1024 * 1024 * 1024,
	"KB": 1000, "kB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000, "TB": 1000 * 1000 * 1000 * 1000,
	"PB": 1000 * 1000 * 1000 * 1000 * 1000, "EB": 1000 * 1000 * 1000 * 1000 * 1000 * 1000,
}

// The regular expressions of this package are compiled on first use,
// not at package init, which every run of anklume pays (`anklume
// version` included) whether or not it reaches them.
var (
	percentRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)%$`) })
	sizeRe    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([A-Za-z]+)$`) })
	numberRe  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)?$`) })
	cpuSetRe  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`) })
)

// rat parses a decimal number exactly.
func rat(s string) (*big.Rat, bool) {
	if !numberRe().MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// reserve computes a host reserve: "N%" of total, or an absolute amount
// (a number, or for memory a size string).
func reserve(spec string, total *big.Rat, sizes bool) (*big.Rat, bool) {
	if m := percentRe().FindStringSubmatch(spec); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return new(big.Rat).Mul(total, big.NewRat(n, 100)), true
	}
	if v, ok := rat(spec); ok {
		return v, true
	}
	if sizes {
		return parseSize(spec)
	}
	return nil, false
}

// parseSize parses "4GiB", "512MB" or "1.5GiB" exactly.
func parseSize(s string) (*big.Rat, bool) {
	m := sizeRe().FindStringSubmatch(s)
	if m == nil {
		return nil, false
	}
	u, ok := unitBytes[m[2]]
	if !ok {
		return nil, false
	}
	v, ok := rat(m[1])
	if !ok {
		return nil, false
	}
	return v.Mul(v, new(big.Rat).SetInt64(u)), true
}

// memoryLimit reads an existing limits.memory value (size, bytes or a
// percentage of the host memory).
func memoryLimit(s string, hostMem *big.Rat) (*big.Rat, bool) {
	if m := percentRe().FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return new(big.Rat).Mul(hostMem, big.NewRat(n, 100)), true
	}
	if v, ok := rat(s); ok {
		return v, true
	}
	return parseSize(s)
}

// cpuCount reads an existing limits.cpu value: a count, or a CPU set
// ("0-3,6") whose size is its count.
func cpuCount(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if !cpuSetRe().MatchString(s) {
		return 0, false
	}
	var n int64
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, _ := strconv.ParseInt(lo, 10, 64)
		b := a
		if isRange {
			b, _ = strconv.ParseInt(hi, 10, 64)
		}
		if b >= a {
			n += b - a + 1
		}
	}
	return n, true
}

// memo caches f per weight.
func memo(f func(int64) string) func(int64) string {
	cache := map[int64]string{}
	return func(w int64) string {
		if v, ok := cache[w]; ok {
			return v
		}
		v := f(w)
		cache[w] = v
		return v
	}
}

// maxInt returns max(n, min).
func maxInt(n *big.Int, min int64) *big.Int {
	if n.Cmp(big.NewInt(min)) < 0 {
		return big.NewInt(min)
	}
	return n
}

func floorRat(r *big.Rat) *big.Int {
	return new(big.Int).Div(r.Num(), r.Denom()) // Denom > 0, values >= 0
}

// formatMemory writes bytes as "<n>GiB" when whole, else "<floor MiB>MiB".
func formatMemory(b *big.Int) string {
	q, rem := new(big.Int).QuoRem(b, big.NewInt(gib), new(big.Int))
	if rem.Sign() == 0 {
		return q.String() + "GiB"
	}
	return new(big.Int).Quo(b, big.NewInt(mib)).String() + "MiB"
}

// formatRat writes an exact value in decimal, at most two decimals.
func formatRat(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	s := r.FloatString(2)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// resources applies the resource policy of §4.9 with exact rational
// arithmetic.
func (r *resolver) resources() {
	rp := r.m.Global.ResourcePolicy
	if rp == nil {
		return
	}
	var pos diag.Pos
	if e := r.global().Get("resource_policy"); e != nil {
		pos = e.KeyPos
	}
	path := diag.Path("").Key("global").Key("resource_policy").String()
	host := r.opts.Resources
	if host == nil {
		r.dl.Warnf(pos, path, "", "could not detect host resources; resource_policy skipped")
		return
	}
	totalCPU := new(big.Rat).SetInt64(host.CPU)
	totalMem := new(big.Rat).SetInt64(host.Memory)
	resCPU, ok1 := reserve(rp.HostReserveCPU, totalCPU, false)
	resMem, ok2 := reserve(rp.HostReserveMemory, totalMem, true)
	if !ok1 || !ok2 {
		r.dl.Warnf(pos, path, "", "could not detect host resources; resource_policy skipped")
		return
	}
	availCPU := new(big.Rat).Sub(totalCPU, resCPU)
	availMem := new(big.Rat).Sub(totalMem, resMem)
	if host.CPU <= 0 || availCPU.Sign() <= 0 || availMem.Sign() <= 0 {
		r.dl.Warnf(pos, path, "", "could not detect host resources; resource_policy skipped")
		return
	}

	var cands []*model.Machine
	for _, x := range r.m.Machines {
		if x.Domain.Enabled {
			cands = append(cands, x)
		}
	}
	weight := func(x *model.Machine) int64 {
		if rp.Mode == "equal" {
			return 1
		}
		if x.Weight < 1 {
			return 1
		}
		return int64(x.Weight)
	}
	needCPU := func(x *model.Machine) bool {
		return !x.Config.Has("limits.cpu") && !x.Config.Has("limits.cpu.allowance")
	}
	needMem := func(x *model.Machine) bool { return !x.Config.Has("limits.memory") }
	// Weight sums are big integers: huge weights must not overflow.
	wCPU, wMem := new(big.Int), new(big.Int)
	for _, x := range cands {
		if needCPU(x) {
			wCPU.Add(wCPU, big.NewInt(weight(x)))
		}
		if needMem(x) {
			wMem.Add(wMem, big.NewInt(weight(x)))
		}
	}
	frac := func(w int64, total *big.Int) *big.Rat {
		if total.Sign() <= 0 {
			return new(big.Rat)
		}
		return new(big.Rat).SetFrac(big.NewInt(w), total)
	}
	// The value for a weight is computed once: every machine of the same
	// weight gets the same limits.
	cpuCountFor := memo(func(w int64) string {
		share := new(big.Rat).Mul(availCPU, frac(w, wCPU))
		return maxInt(floorRat(share), 1).String()
	})
	allowanceFor := memo(func(w int64) string {
		pct := new(big.Rat).Mul(availCPU, frac(w, wCPU))
		pct.Mul(pct, big.NewRat(100, 1))
		pct.Quo(pct, totalCPU)
		return maxInt(floorRat(pct), 1).String() + "%"
	})
	memoryFor := memo(func(w int64) string {
		share := new(big.Rat).Mul(availMem, frac(w, wMem))
		return formatMemory(maxInt(floorRat(share), 128*mib))
	})
	for _, x := range cands {
		cfg := x.Config
		if needCPU(x) {
			if rp.CPUMode == "count" || x.Type == model.VM {
				cfg = cfg.Set("limits.cpu", cpuCountFor(weight(x)))
			} else {
				cfg = cfg.Set("limits.cpu.allowance", allowanceFor(weight(x)))
			}
		}
		if needMem(x) {
			cfg = cfg.Set("limits.memory", memoryFor(weight(x)))
		}
		if rp.MemoryEnforce == "soft" && x.Type != model.VM && cfg.Has("limits.memory") && !cfg.Has("limits.memory.enforce") {
			cfg = cfg.Set("limits.memory.enforce", "soft")
		}
		x.Config = cfg
	}

	// Overcommit check: counts only; allowances are never summed.
	sumCPU := new(big.Rat)
	sumMem := new(big.Rat)
	memBytes := map[string]*big.Rat{}
	for _, x := range cands {
		if v, ok := x.Config.Get("limits.cpu"); ok {
			if n, ok := cpuCount(v); ok {
				sumCPU.Add(sumCPU, new(big.Rat).SetInt64(n))
			}
		}
		if v, ok := x.Config.Get("limits.memory"); ok {
			b, seen := memBytes[v]
			if !seen {
				b, _ = memoryLimit(v, totalMem)
				memBytes[v] = b
			}
			if b != nil {
				sumMem.Add(sumMem, b)
			}
		}
	}
	var details []string
	if sumCPU.Cmp(availCPU) > 0 {
		details = append(details, "CPU: "+formatRat(sumCPU)+" cores > "+formatRat(availCPU)+" available")
	}
	if sumMem.Cmp(availMem) > 0 {
		details = append(details, "memory: "+formatMemory(floorRat(sumMem))+" > "+formatMemory(floorRat(availMem))+" available")
	}
	if len(details) == 0 {
		return
	}
	d := strings.Join(details, "; ")
	if rp.Overcommit {
		r.dl.Warnf(pos, path, "", "resource overcommit allowed: %s", d)
		return
	}
	r.dl.Errorf(pos, path, "set global.resource_policy.overcommit: true to allow it", "resource overcommit: %s", d)
}
