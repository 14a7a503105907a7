package hostenv

import (
	"errors"
	"io/fs"
	"net"
	"reflect"
	"testing"

	"github.com/anklume/anklume/compiler/host"
)

// fakeSys is a Sys over an environment map and a file map.
func fakeSys(env map[string]string, files map[string]string) Sys {
	return Sys{
		Getenv: func(k string) string { return env[k] },
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
		Interfaces: func() ([]host.Interface, error) {
			return []host.Interface{{Name: "eth0", CIDR: "192.168.1.5/24"}}, nil
		},
	}
}

func boolp(b bool) *bool { return &b }

const cpuinfo4 = "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\n\nprocessor\t: 2\n\nprocessor\t: 3\n"
const meminfo = "MemTotal:       16318412 kB\nMemFree:         1000 kB\n"

// TestReadContext covers §2.14 and §16 #30 (nesting level, "abc" is an error).
func TestReadContext(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  host.Context
		err   string
	}{
		{name: "no files", want: host.Context{}},
		{
			name:  "all files, whitespace trimmed",
			files: map[string]string{"/ctx/absolute_level": " 2\n", "/ctx/relative_level": "1\n", "/ctx/vm_nested": "true\n", "/ctx/yolo": "true"},
			want:  host.Context{Level: 2, RelativeLevel: 1, VMNested: boolp(true), Yolo: true},
		},
		{
			name:  "level 0 and vm_nested false",
			files: map[string]string{"/ctx/absolute_level": "0", "/ctx/vm_nested": "false"},
			want:  host.Context{VMNested: boolp(false)},
		},
		{
			name:  "vm_nested neither true nor false is unknown; yolo other than true is false",
			files: map[string]string{"/ctx/vm_nested": "maybe", "/ctx/yolo": "yes"},
			want:  host.Context{},
		},
		{
			name:  "level abc",
			files: map[string]string{"/ctx/absolute_level": "abc\n"},
			err:   `/ctx/absolute_level: "abc" is not a non-negative integer`,
		},
		{
			name:  "negative level",
			files: map[string]string{"/ctx/absolute_level": "-1"},
			err:   `/ctx/absolute_level: "-1" is not a non-negative integer`,
		},
		{
			name:  "empty level file",
			files: map[string]string{"/ctx/absolute_level": "\n"},
			err:   `/ctx/absolute_level: "" is not a non-negative integer`,
		},
		{
			name:  "plus sign",
			files: map[string]string{"/ctx/absolute_level": "+1"},
			err:   `/ctx/absolute_level: "+1" is not a non-negative integer`,
		},
		{
			name:  "bad relative level",
			files: map[string]string{"/ctx/relative_level": "1.5"},
			err:   `/ctx/relative_level: "1.5" is not a non-negative integer`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := fakeSys(nil, tt.files)
			got, err := ReadContext(sys.ReadFile, "/ctx/")
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("context = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadContextReadError(t *testing.T) {
	readFile := func(string) ([]byte, error) { return nil, errors.New("permission denied") }
	_, err := ReadContext(readFile, "/ctx")
	if err == nil || err.Error() != "reading /ctx/absolute_level: permission denied" {
		t.Fatalf("err = %v", err)
	}
}

func TestContextDir(t *testing.T) {
	if got := ContextDir(func(string) string { return "" }); got != "/etc/anklume" {
		t.Errorf("default = %q", got)
	}
	if got := ContextDir(func(string) string { return "/tmp/c" }); got != "/tmp/c" {
		t.Errorf("override = %q", got)
	}
}

// TestParseImageMap covers §4.12 and §16 #92 (a malformed value is an error).
func TestParseImageMap(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  bool
	}{
		{in: "", want: nil},
		{in: "images:debian/13=local-debian", want: map[string]string{"images:debian/13": "local-debian"}},
		{in: "a=b,c=d", want: map[string]string{"a": "b", "c": "d"}},
		{in: "a=b,b=c", want: map[string]string{"a": "b", "b": "c"}},
		{in: "a", err: true},
		{in: "=b", err: true},
		{in: "a=", err: true},
		{in: "a=b,", err: true},
		{in: ",a=b", err: true},
		{in: "a=b=c", err: true},
		{in: "a=b,a=c", err: true},
		{in: "a = b", err: true},
	}
	for _, tt := range tests {
		got, err := ParseImageMap(tt.in)
		if tt.err {
			want := `ANKLUME_IMAGE_MAP: expected <ref>=<ref>[,…], got "` + tt.in + `"`
			if err == nil || err.Error() != want {
				t.Errorf("ParseImageMap(%q) err = %v, want %q", tt.in, err, want)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseImageMap(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseHostResources(t *testing.T) {
	tests := []struct {
		in   string
		want *host.Resources
		err  bool
	}{
		{in: "cpu=10,memory=40GiB", want: &host.Resources{CPU: 10, Memory: 40 << 30}},
		{in: "memory=10GiB,cpu=7", want: &host.Resources{CPU: 7, Memory: 10 << 30}},
		{in: "cpu=2,memory=4GB", want: &host.Resources{CPU: 2, Memory: 4_000_000_000}},
		{in: "cpu=2,memory=1048576", want: &host.Resources{CPU: 2, Memory: 1 << 20}},
		{in: "none", want: nil},
		{in: "cpu=10", err: true},
		{in: "memory=1GiB", err: true},
		{in: "cpu=0,memory=1GiB", err: true},
		{in: "cpu=-1,memory=1GiB", err: true},
		{in: "cpu=+1,memory=1GiB", err: true},
		{in: "cpu=1,memory=1gib", err: true},
		{in: "cpu=1,memory=0", err: true},
		{in: "cpu=1,memory=1GiB,disk=2", err: true},
		{in: "cpu=1,cpu=2,memory=1GiB", err: true},
		{in: "cpu=1,memory=99999999999TiB", err: true},
		{in: "NONE", err: true},
	}
	for _, tt := range tests {
		got, err := ParseHostResources(tt.in)
		if tt.err {
			want := `ANKLUME_HOST_RESOURCES: expected cpu=<n>,memory=<size> or none, got "` + tt.in + `"`
			if err == nil || err.Error() != want {
				t.Errorf("ParseHostResources(%q) err = %v, want %q", tt.in, err, want)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHostResources(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestResourcesFromProc(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  *host.Resources
	}{
		{
			name:  "cpuinfo and meminfo",
			files: map[string]string{"/proc/cpuinfo": cpuinfo4, "/proc/meminfo": meminfo},
			want:  &host.Resources{CPU: 4, Memory: 16318412 * 1024},
		},
		{name: "no /proc", want: nil},
		{
			name:  "no MemTotal",
			files: map[string]string{"/proc/cpuinfo": cpuinfo4, "/proc/meminfo": "MemFree: 1 kB\n"},
			want:  nil,
		},
		{
			name:  "no processor line",
			files: map[string]string{"/proc/cpuinfo": "Hardware: x\n", "/proc/meminfo": meminfo},
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resources(fakeSys(nil, tt.files), false)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resources = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResourcesOverrideWinsOverProcAndRemote(t *testing.T) {
	files := map[string]string{"/proc/cpuinfo": cpuinfo4, "/proc/meminfo": meminfo}
	env := map[string]string{EnvHostResources: "cpu=10,memory=40GiB"}
	sys := fakeSys(env, files)
	sys.RemoteResources = func() (*host.Resources, error) { return &host.Resources{CPU: 1, Memory: 1}, nil }
	for _, remote := range []bool{false, true} {
		got, err := Resources(sys, remote)
		if err != nil || !reflect.DeepEqual(got, &host.Resources{CPU: 10, Memory: 40 << 30}) {
			t.Errorf("remote=%v: %+v, %v", remote, got, err)
		}
	}
	// Remote without override uses the server, not /proc.
	delete(env, EnvHostResources)
	got, _ := Resources(sys, true)
	if !reflect.DeepEqual(got, &host.Resources{CPU: 1, Memory: 1}) {
		t.Errorf("remote: %+v", got)
	}
	sys.RemoteResources = nil
	if got, _ := Resources(sys, true); got != nil {
		t.Errorf("remote without a reader: %+v, want nil", got)
	}
}

func TestGather(t *testing.T) {
	files := map[string]string{
		"/etc/anklume/absolute_level": "1", "/proc/cpuinfo": cpuinfo4, "/proc/meminfo": meminfo,
		"/tmp/ctx/absolute_level": "3",
	}
	tests := []struct {
		name   string
		env    map[string]string
		remote bool
		want   host.Options
		err    string
	}{
		{
			name: "defaults read /etc/anklume, /proc and the interfaces",
			want: host.Options{
				Context:    host.Context{Level: 1},
				Resources:  &host.Resources{CPU: 4, Memory: 16318412 * 1024},
				Interfaces: []host.Interface{{Name: "eth0", CIDR: "192.168.1.5/24"}},
			},
		},
		{
			name: "test environment of §16",
			env: map[string]string{
				EnvContextDir: "/tmp/empty", EnvSkipSubnet: "1", EnvHostResources: "cpu=10,memory=40GiB",
				EnvImageMap: "images:debian/13=local-debian",
			},
			want: host.Options{
				Resources:           &host.Resources{CPU: 10, Memory: 40 << 30},
				SkipHostSubnetCheck: true,
				ImageMap:            map[string]string{"images:debian/13": "local-debian"},
			},
		},
		{
			name:   "remote skips the interfaces",
			env:    map[string]string{EnvContextDir: "/tmp/ctx", EnvHostResources: "none"},
			remote: true,
			want:   host.Options{Context: host.Context{Level: 3}, Remote: true},
		},
		{
			name: "skip check only with 1",
			env:  map[string]string{EnvSkipSubnet: "0", EnvHostResources: "none"},
			want: host.Options{
				Context:    host.Context{Level: 1},
				Interfaces: []host.Interface{{Name: "eth0", CIDR: "192.168.1.5/24"}},
			},
		},
		{
			name: "bad image map",
			env:  map[string]string{EnvImageMap: "x"},
			err:  `ANKLUME_IMAGE_MAP: expected <ref>=<ref>[,…], got "x"`,
		},
		{
			name: "bad host resources",
			env:  map[string]string{EnvHostResources: "cpu=x"},
			err:  `ANKLUME_HOST_RESOURCES: expected cpu=<n>,memory=<size> or none, got "cpu=x"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Gather(fakeSys(tt.env, files), tt.remote)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("options =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestGatherInterfaceError(t *testing.T) {
	sys := fakeSys(map[string]string{EnvHostResources: "none"}, nil)
	sys.Interfaces = func() ([]host.Interface, error) { return nil, errors.New("netlink: boom") }
	_, err := Gather(sys, false)
	if err == nil || err.Error() != "listing host interfaces: netlink: boom" {
		t.Fatalf("err = %v", err)
	}
}

func TestIPv4Addrs(t *testing.T) {
	addrs := []net.Addr{
		&net.IPNet{IP: net.IPv4(10, 120, 0, 5), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.IPv4(10, 1, 2, 3), Mask: net.CIDRMask(120, 128)},
		&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
		&net.IPAddr{IP: net.IPv4(1, 2, 3, 4)},
	}
	got := ipv4Addrs("dummy0", addrs)
	want := []host.Interface{{Name: "dummy0", CIDR: "10.120.0.5/24"}, {Name: "dummy0", CIDR: "10.1.2.3/24"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1KiB", 1024, true}, {"1KB", 1000, true}, {"2TiB", 2 << 40, true}, {"10B", 10, true},
		{"12", 12, true}, {"1.5GiB", 0, false}, {"GiB", 0, false}, {"-1", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseSize(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseEnv checks that the environment parsers never panic and never
// return a non-positive resource.
func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{"cpu=10,memory=40GiB", "none", "a=b,c=d", "cpu=1,memory=99999999999TiB", "=,="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseHostResources(s); err == nil && r != nil && (r.CPU <= 0 || r.Memory <= 0) {
			t.Fatalf("ParseHostResources(%q) = %+v", s, r)
		}
		if m, err := ParseImageMap(s); err == nil {
			for k, v := range m {
				if k == "" || v == "" {
					t.Fatalf("ParseImageMap(%q) has an empty side: %v", s, m)
				}
			}
		}
	})
}
