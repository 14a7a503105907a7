// Package hostenv gathers the host context the compiler needs (SPEC.md
// §2.14) from the environment, the context directory, /proc and the
// kernel's interfaces, and turns it into a host.Options value. Every source
// is injected through Sys, so tests never read the real host.
package hostenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/host"
)

// DefaultContextDir is the nesting context directory when
// ANKLUME_CONTEXT_DIR is not set.
const DefaultContextDir = "/etc/anklume"

// Environment variables read by Gather (SPEC.md §13).
const (
	EnvContextDir     = "ANKLUME_CONTEXT_DIR"
	EnvSkipSubnet     = "ANKLUME_SKIP_HOST_SUBNET_CHECK"
	EnvHostResources  = "ANKLUME_HOST_RESOURCES"
	EnvImageMap       = "ANKLUME_IMAGE_MAP"
	procCPUInfo       = "/proc/cpuinfo"
	procMemInfo       = "/proc/meminfo"
	resourcesNoneWord = "none"
)

// Sys is the host as Gather sees it.
type Sys struct {
	// Getenv reads an environment variable ("" when unset).
	Getenv func(string) string
	// ReadFile reads a file by its absolute host path.
	ReadFile func(string) ([]byte, error)
	// Interfaces lists the host interface addresses.
	Interfaces func() ([]host.Interface, error)
	// RemoteResources reads the Incus server's resources with --remote
	// (GET /1.0/resources). Nil means not available: detection fails.
	RemoteResources func() (*host.Resources, error)
}

// OS returns the Sys of the machine anklume runs on.
func OS() Sys {
	return Sys{Getenv: os.Getenv, ReadFile: os.ReadFile, Interfaces: SystemInterfaces}
}

// Gather builds host.Options. remote is true with --remote. A returned
// error is fatal and its text is printed after "error: ".
func Gather(sys Sys, remote bool) (host.Options, error) {
	var opts host.Options
	opts.Remote = remote

	ctx, err := ReadContext(sys.ReadFile, ContextDir(sys.Getenv))
	if err != nil {
		return host.Options{}, err
	}
	opts.Context = ctx

	im, err := ParseImageMap(sys.Getenv(EnvImageMap))
	if err != nil {
		return host.Options{}, err
	}
	opts.ImageMap = im

	res, err := Resources(sys, remote)
	if err != nil {
		return host.Options{}, err
	}
	opts.Resources = res

	opts.SkipHostSubnetCheck = sys.Getenv(EnvSkipSubnet) == "1"
	if !opts.SkipHostSubnetCheck && !remote && sys.Interfaces != nil {
		ifs, err := sys.Interfaces()
		if err != nil {
			return host.Options{}, fmt.Errorf("listing host interfaces: %w", err)
		}
		opts.Interfaces = ifs
	}
	return opts, nil
}

// ContextDir returns ANKLUME_CONTEXT_DIR, or /etc/anklume when unset.
func ContextDir(getenv func(string) string) string {
	if d := getenv(EnvContextDir); d != "" {
		return d
	}
	return DefaultContextDir
}

// ReadContext reads the nesting context files of dir (SPEC.md §2.14). A
// missing file means level 0, vm_nested unknown, yolo false and relative
// level 0.
func ReadContext(readFile func(string) ([]byte, error), dir string) (host.Context, error) {
	var ctx host.Context
	read := func(name string) (string, bool, error) {
		p := filepath.Join(dir, name)
		b, err := readFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("reading %s: %w", p, err)
		}
		return strings.TrimSpace(string(b)), true, nil
	}
	level := func(name string) (int, error) {
		v, ok, err := read(name)
		if err != nil || !ok {
			return 0, err
		}
		n, perr := parseLevel(v)
		if perr != nil {
			return 0, fmt.Errorf("%s: %q is not a non-negative integer", filepath.Join(dir, name), v)
		}
		return n, nil
	}
	var err error
	if ctx.Level, err = level("absolute_level"); err != nil {
		return host.Context{}, err
	}
	if ctx.RelativeLevel, err = level("relative_level"); err != nil {
		return host.Context{}, err
	}
	v, ok, err := read("vm_nested")
	if err != nil {
		return host.Context{}, err
	}
	if ok {
		switch {
		case strings.EqualFold(v, "true"):
			t := true
			ctx.VMNested = &t
		case strings.EqualFold(v, "false"):
			f := false
			ctx.VMNested = &f
		}
	}
	v, ok, err = read("yolo")
	if err != nil {
		return host.Context{}, err
	}
	ctx.Yolo = ok && strings.EqualFold(v, "true")
	return ctx, nil
}

var digits = regexp.MustCompile(`^[0-9]+$`)

func parseLevel(v string) (int, error) {
	if !digits.MatchString(v) {
		return 0, errors.New("not digits")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ParseImageMap parses ANKLUME_IMAGE_MAP (SPEC.md §4.12):
// "<ref>=<ref>[,<ref>=<ref>…]". An empty value is an empty map.
func ParseImageMap(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	bad := fmt.Errorf("ANKLUME_IMAGE_MAP: expected <ref>=<ref>[,…], got %q", v)
	m := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		from, to, ok := strings.Cut(pair, "=")
		if !ok || from == "" || to == "" || strings.Contains(to, "=") ||
			strings.ContainsAny(pair, " \t\r\n") {
			return nil, bad
		}
		if _, dup := m[from]; dup {
			return nil, bad
		}
		m[from] = to
	}
	return m, nil
}

// Resources returns the host CPU and memory (SPEC.md §2.14):
// ANKLUME_HOST_RESOURCES when set ("none" simulates a failed detection),
// else the server resources with remote, else /proc. A failed detection
// is a nil *host.Resources, not an error; only a malformed
// ANKLUME_HOST_RESOURCES is an error.
func Resources(sys Sys, remote bool) (*host.Resources, error) {
	if v := sys.Getenv(EnvHostResources); v != "" {
		return ParseHostResources(v)
	}
	if remote {
		if sys.RemoteResources == nil {
			return nil, nil
		}
		r, err := sys.RemoteResources()
		if err != nil {
			return nil, nil
		}
		return r, nil
	}
	return procResources(sys.ReadFile), nil
}

// ParseHostResources parses "cpu=<n>,memory=<size>" or "none".
func ParseHostResources(v string) (*host.Resources, error) {
	if v == resourcesNoneWord {
		return nil, nil
	}
	bad := fmt.Errorf("%s: expected cpu=<n>,memory=<size> or none, got %q", EnvHostResources, v)
	var r host.Resources
	var haveCPU, haveMem bool
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, bad
		}
		switch k {
		case "cpu":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 || haveCPU || !digits.MatchString(val) {
				return nil, bad
			}
			r.CPU, haveCPU = n, true
		case "memory":
			n, ok := ParseSize(val)
			if !ok || n <= 0 || haveMem {
				return nil, bad
			}
			r.Memory, haveMem = n, true
		default:
			return nil, bad
		}
	}
	if !haveCPU || !haveMem {
		return nil, bad
	}
	return &r, nil
}

var sizeRe = regexp.MustCompile(`^([0-9]+)(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`)

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000, "TB": 1000 * 1000 * 1000 * 1000,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// ParseSize parses a size such as "40GiB", "512MB" or a number of bytes.
// It reports false on a malformed value or an overflow.
func ParseSize(s string) (int64, bool) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	u := sizeUnits[m[2]]
	if n > 0 && n > (1<<63-1)/u {
		return 0, false
	}
	return n * u, true
}

// procResources counts the processors of /proc/cpuinfo and reads MemTotal
// from /proc/meminfo. Any failure gives nil.
func procResources(readFile func(string) ([]byte, error)) *host.Resources {
	if readFile == nil {
		return nil
	}
	cpuinfo, err := readFile(procCPUInfo)
	if err != nil {
		return nil
	}
	meminfo, err := readFile(procMemInfo)
	if err != nil {
		return nil
	}
	cpus := countProcessors(cpuinfo)
	mem, ok := memTotal(meminfo)
	if cpus <= 0 || !ok {
		return nil
	}
	return &host.Resources{CPU: cpus, Memory: mem}
}

func countProcessors(b []byte) int64 {
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, _, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return n
}

func memTotal(b []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "MemTotal" {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n <= 0 {
			return 0, false
		}
		mult := int64(1)
		if len(f) > 1 {
			if f[1] != "kB" {
				return 0, false
			}
			mult = 1024
		}
		return n * mult, true
	}
	return 0, false
}

// SystemInterfaces lists the IPv4 addresses of the kernel's interfaces.
func SystemInterfaces() ([]host.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []host.Interface
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		out = append(out, ipv4Addrs(ifc.Name, addrs)...)
	}
	return out, nil
}

func ipv4Addrs(name string, addrs []net.Addr) []host.Interface {
	var out []host.Interface
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ones, bits := ipn.Mask.Size()
		if bits == 128 {
			ones -= 96 // IPv4 address with a 16-byte mask
		}
		out = append(out, host.Interface{Name: name, CIDR: ipn.IP.To4().String() + "/" + strconv.Itoa(ones)})
	}
	return out
}
