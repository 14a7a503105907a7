package incus

import (
	"strings"
	"testing"
)

// domainPSOT returns a zone-mode PSOT with one domain `work` whose body
// (profiles, machines) is body, indented under the domain.
func domainPSOT(body string) string {
	var b strings.Builder
	b.WriteString("format_version: 1\nproject_name: t\nglobal:\n  addressing: {}\n")
	b.WriteString("domains:\n  work:\n    trust_level: trusted\n")
	for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// machine returns the machines block of one machine m of type typ with
// the extra YAML lines extra (indented under the machine).
func machine(typ, extra string) string {
	s := "machines:\n  m1:\n    type: " + typ + "\n"
	if extra != "" {
		for _, l := range strings.Split(strings.TrimRight(extra, "\n"), "\n") {
			s += "    " + l + "\n"
		}
	}
	return s
}

// TestRestrictedRows checks every derived row of §5.3 key by key, in both
// directions (§16 #78, #77, #54): each case lists exactly the derived
// restricted.* keys the project must carry, nothing more.
func TestRestrictedRows(t *testing.T) {
	const (
		nesting   = "restricted.containers.nesting=allow"
		privilege = "restricted.containers.privilege=allow"
		intercept = "restricted.containers.interception=allow"
		cLow      = "restricted.containers.lowlevel=allow"
		vmLow     = "restricted.virtual-machines.lowlevel=allow"
		gpu       = "restricted.devices.gpu=allow"
		nic       = "restricted.devices.nic=allow"
		disk      = "restricted.devices.disk=allow"
		target    = "restricted.cluster.target=allow"
	)
	lines := func(s ...string) string { return strings.Join(s, "\n") }
	tests := []struct {
		name string
		body string
		want string
	}{
		{"plain container derives nothing", machine("lxc", ""), ""},
		{"plain vm derives nothing", machine("vm", ""), ""},
		{"#78 security.idmap.isolated derives nothing",
			machine("lxc", "config: {security.idmap.isolated: \"true\"}"), ""},
		{"#78 linux.sysctl derives nothing",
			machine("lxc", "config: {linux.sysctl.net.ipv4.ip_forward: \"1\"}"), ""},
		{"nesting truthy", machine("lxc", "config: {security.nesting: \"true\"}"), nesting},
		{"nesting truthy yes (§2.2 item 9)", machine("lxc", "config: {security.nesting: \"YES\"}"), nesting},
		{"nesting boolean", machine("lxc", "config: {security.nesting: true}"), nesting},
		{"nesting false", machine("lxc", "config: {security.nesting: \"false\"}"), ""},
		{"nesting on a vm does not count", machine("vm", "config: {security.nesting: \"true\"}"), ""},
		{"privileged", machine("lxc", "config: {security.privileged: \"1\"}"), privilege},
		{"privileged off", machine("lxc", "config: {security.privileged: \"off\"}"), ""},
		{"#78 intercept.mknod true", machine("lxc", "config: {security.syscalls.intercept.mknod: \"true\"}"), intercept},
		{"intercept.mknod false", machine("lxc", "config: {security.syscalls.intercept.mknod: \"false\"}"), ""},
		{"intercept.sysinfo", machine("lxc", "config: {security.syscalls.intercept.sysinfo: \"on\"}"), intercept},
		{"intercept.bpf.devices", machine("lxc", "config: {security.syscalls.intercept.bpf.devices: \"true\"}"), intercept},
		{"intercept.mount.fuse any non-empty value", machine("lxc", "config: {security.syscalls.intercept.mount.fuse: \"ext4=fuse2fs\"}"), intercept},
		{"intercept.mount.fuse empty", machine("lxc", "config: {security.syscalls.intercept.mount.fuse: \"\"}"), ""},
		{"#78 intercept.mount.shift is low-level", machine("lxc", "config: {security.syscalls.intercept.mount.shift: \"true\"}"), cLow},
		{"#78 limits.memory.swap", machine("lxc", "config: {limits.memory.swap: \"false\"}"), cLow},
		{"limits.memory.oom_priority on a container", machine("lxc", "config: {limits.memory.oom_priority: 5}"), cLow},
		{"limits.memory.oom_priority on a vm", machine("vm", "config: {limits.memory.oom_priority: 5}"), vmLow},
		{"linux.kernel_modules", machine("lxc", "config: {linux.kernel_modules: overlay}"), cLow},
		{"raw.lxc", machine("lxc", "config: {raw.lxc: \"lxc.apparmor.profile=unconfined\"}"), cLow},
		{"raw.lxc on a vm", machine("vm", "config: {raw.lxc: x}"), ""},
		{"security.bpffs", machine("lxc", "config: {security.bpffs.path: /sys/fs/bpf}"), cLow},
		{"security.guestapi.images", machine("lxc", "config: {security.guestapi.images: \"true\"}"), cLow},
		{"security.idmap.base", machine("lxc", "config: {security.idmap.base: 100000}"), cLow},
		{"security.idmap.size", machine("lxc", "config: {security.idmap.size: 65536}"), cLow},
		{"boot.host_shutdown_timeout on a container", machine("lxc", "config: {boot.host_shutdown_timeout: 30}"), cLow},
		{"boot.host_shutdown_action on a vm", machine("vm", "config: {boot.host_shutdown_action: stop}"), vmLow},
		{"limits.memory.hugepages on a vm", machine("vm", "config: {limits.memory.hugepages: \"true\"}"), vmLow},
		{"limits.memory.hugepages on a container", machine("lxc", "config: {limits.memory.hugepages: \"true\"}"), ""},
		{"raw.apparmor on a vm", machine("vm", "config: {raw.apparmor: x}"), vmLow},
		{"raw.idmap on a vm", machine("vm", "config: {raw.idmap: \"both 1000 1000\"}"), vmLow},
		{"raw.qemu on a vm", machine("vm", "config: {raw.qemu: \"-S\"}"), vmLow},
		{"raw.qemu.conf on a vm", machine("vm", "config: {raw.qemu.conf: x}"), vmLow},
		{"#78 raw.qemu in a profile sets both low-level keys",
			"profiles:\n  p:\n    config: {raw.qemu: \"-S\"}\n" + machine("lxc", ""), lines(cLow, vmLow)},
		{"profile nesting counts even when unused",
			"profiles:\n  p:\n    config: {security.nesting: \"true\"}\n" + machine("lxc", ""), nesting},
		{"profile boot.host_shutdown_timeout sets both",
			"profiles:\n  p:\n    config: {boot.host_shutdown_timeout: 5}\n" + machine("lxc", ""), lines(cLow, vmLow)},
		{"profile limits.memory.hugepages is vm only",
			"profiles:\n  p:\n    config: {limits.memory.hugepages: \"true\"}\n" + machine("lxc", ""), vmLow},
		{"profile linux.sysctl derives nothing",
			"profiles:\n  p:\n    config: {linux.sysctl.vm.swappiness: 10}\n" + machine("lxc", ""), ""},
		{"gpu: true", machine("lxc", "gpu: true"), gpu},
		{"gpu device in an unused profile",
			"profiles:\n  p:\n    devices: {g: {type: gpu}}\n" + machine("lxc", ""), gpu},
		{"usb device", machine("lxc", "devices: {d: {type: usb, vendorid: \"04b8\"}}"), "restricted.devices.usb=allow"},
		{"pci device", machine("vm", "devices: {d: {type: pci, address: \"0000:00:1f.0\"}}"), "restricted.devices.pci=allow"},
		{"proxy device", machine("lxc", "devices: {d: {type: proxy, listen: \"tcp:0.0.0.0:80\", connect: \"tcp:127.0.0.1:80\"}}"), "restricted.devices.proxy=allow"},
		{"unix-char device", machine("lxc", "devices: {d: {type: unix-char, path: /dev/ttyS0}}"), "restricted.devices.unix-char=allow"},
		{"unix-block device", machine("lxc", "devices: {d: {type: unix-block, path: /dev/sdb}}"), "restricted.devices.unix-block=allow"},
		{"unix-hotplug device", machine("lxc", "devices: {d: {type: unix-hotplug, vendorid: \"1234\"}}"), "restricted.devices.unix-hotplug=allow"},
		{"infiniband device", machine("lxc", "devices: {d: {type: infiniband, nictype: physical, parent: ib0}}"), "restricted.devices.infiniband=allow"},
		{"#77 nic with parent and no network", machine("lxc", "devices: {eth1: {type: nic, nictype: macvlan, parent: eth0}}"), nic},
		{"nic on the domain's own network", machine("lxc", "devices: {eth1: {type: nic, network: net-work}}"), ""},
		{"host-path disk", machine("lxc", "devices: {d: {type: disk, source: /srv/data, path: /data}}"),
			lines(disk, "restricted.devices.disk.paths=/srv/data")},
		{"pool-backed disk", machine("lxc", "devices: {d: {type: disk, pool: default, source: vol1, path: /data}}"), ""},
		{"storage volume", machine("lxc", "storage_volumes: {vol1: {size: 1GiB, path: /data}}"), ""},
		{"persistent data",
			machine("lxc", "persistent_data: {home: {path: /home}}"),
			lines(disk, "restricted.devices.disk.paths=/srv/anklume/data/work")},
		{"target", machine("lxc", "target: node1"), target},
		{"disk in an unused profile",
			"profiles:\n  p:\n    devices: {d: {type: disk, source: /srv/p, path: /p}}\n" + machine("lxc", ""),
			lines(disk, "restricted.devices.disk.paths=/srv/p")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := compile(t, domainPSOT(tc.body))
			s := Desired(m)
			p := s.DomainProject("work")
			if p == nil {
				t.Fatal("no project for domain work")
			}
			if got := pairs(p.Config, derived); got != tc.want {
				t.Errorf("derived keys:\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// TestNICParentAccess is §16 #77: a nic with parent eth0 and no network
// adds eth0 to restricted.networks.access (sorted, unique) and sets
// restricted.devices.nic.
func TestNICParentAccess(t *testing.T) {
	body := "profiles:\n  p:\n    devices: {lan: {type: nic, nictype: macvlan, parent: eth0}}\n" +
		machine("lxc", "devices: {eth1: {type: nic, nictype: macvlan, parent: eth0}, eth2: {type: nic, nictype: macvlan, parent: br-lan}}")
	p := Desired(compile(t, domainPSOT(body))).DomainProject("work")
	if got, want := p.Config["restricted.networks.access"], "br-lan,eth0,net-work"; got != want {
		t.Errorf("restricted.networks.access = %q, want %q", got, want)
	}
	if got := p.Config["restricted.devices.nic"]; got != "allow" {
		t.Errorf("restricted.devices.nic = %q, want allow", got)
	}
}

// TestFixedProjectKeys checks the fixed keys of §5.3 on every project.
func TestFixedProjectKeys(t *testing.T) {
	p := Desired(compile(t, domainPSOT(machine("lxc", "")))).DomainProject("work")
	want := strings.Join([]string{
		"features.images=false",
		"features.networks=false",
		"features.profiles=true",
		"features.storage.volumes=true",
		"restricted=true",
		"restricted.backups=allow",
		"restricted.networks.access=net-work",
		"restricted.snapshots=allow",
	}, "\n")
	got := pairs(p.Config, func(k string) bool { return !strings.HasPrefix(k, OwnershipKeyPrefix) })
	if got != want {
		t.Errorf("project keys:\n got: %s\nwant: %s", got, want)
	}
}

// TestDiskPathsSortedUnique: shared-volume sources, user host paths and
// the persistent-data base of the domain, sorted and unique (§5.3).
func TestDiskPathsSortedUnique(t *testing.T) {
	y := `format_version: 1
project_name: t
global:
  addressing: {}
  persistent_data_base: /data/pd
domains:
  work:
    trust_level: trusted
    machines:
      a:
        devices: {x: {type: disk, source: /srv/zz, path: /zz}}
        persistent_data: {home: {path: /home}}
      b:
        devices: {x: {type: disk, source: /srv/zz, path: /zz}}
        persistent_data: {home: {path: /home}}
shared_volumes:
  docs:
    consumers: {work: ro}
`
	p := Desired(compile(t, y)).DomainProject("work")
	if got, want := p.Config["restricted.devices.disk.paths"], "/data/pd/work,/srv/anklume/shares/docs,/srv/zz"; got != want {
		t.Errorf("restricted.devices.disk.paths = %q, want %q", got, want)
	}
	if got := p.Config["restricted.devices.disk"]; got != "allow" {
		t.Errorf("restricted.devices.disk = %q, want allow", got)
	}
}

// TestTruthy is §2.2 item 9.
func TestTruthy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"true", true}, {"TRUE", true}, {"1", true}, {"yes", true}, {"On", true},
		{"false", false}, {"0", false}, {"", false}, {"no", false}, {"off", false}, {"2", false},
	} {
		if got := Truthy(tc.in); got != tc.want {
			t.Errorf("Truthy(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
