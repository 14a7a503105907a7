package semantic

import "testing"

// TestPersistentData covers V21 (§16 item 18).
func TestPersistentData(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item18/V21 pd collides with a user device", src: zoneHead + `  work:
    machines:
      web:
        persistent_data:
          home: {path: /home/user}
        devices:
          pd-home: {type: disk, source: /srv/x, path: /mnt/x}
`, want: []string{
			"infra.yml:9:11: domains.work.machines.web.persistent_data.home: generated device \"pd-home\" collides with a device of the same name in devices",
		}},
		{name: "item18/V21 mount path twice", src: zoneHead + `  work:
    machines:
      web:
        persistent_data:
          home: {path: /home/user}
          data: {path: /home/user/}
        storage_volumes:
          vol: {size: 1GiB, path: /home/user}
        devices:
          extra: {type: disk, source: /srv/x, path: /home/user}
          usb: {type: usb}
`, want: []string{
			"infra.yml:10:24: domains.work.machines.web.persistent_data.data.path: mount path \"/home/user/\" is used twice on machine \"web\" (pd-home, pd-data)",
			"infra.yml:12:35: domains.work.machines.web.storage_volumes.vol.path: mount path \"/home/user\" is used twice on machine \"web\" (pd-home, vol)",
			"infra.yml:14:53: domains.work.machines.web.devices.extra.path: mount path \"/home/user\" is used twice on machine \"web\" (pd-home, extra)",
		}},
		{name: "item18/V21 distinct paths, same path on two machines", src: zoneHead + `  work:
    machines:
      web:
        persistent_data:
          home: {path: /home/user}
        devices:
          home: {type: disk, source: /srv/x, path: /mnt/x}
      db:
        persistent_data:
          home: {path: /home/user}
`},
	})
}

// TestSharedVolumes covers V28, W11 for consumers and W15 (§16 item 18).
func TestSharedVolumes(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item18/V28 unknown consumer", src: zoneHead + `  work:
    machines:
      web: {}
shared_volumes:
  course:
    consumers:
      work: ro
      web: rw
      wrok: ro
`, want: []string{
			"infra.yml:13:7: shared_volumes.course.consumers.wrok: \"wrok\" is not a known domain or machine",
		}},
		{name: "item18/V28 sv- collision and default mount path", src: zoneHead + `  work:
    machines:
      web:
        devices:
          sv-course: {type: disk, source: /srv/c, path: /c}
          other: {type: disk, source: /srv/d, path: /shared/course}
      db: {}
shared_volumes:
  course:
    consumers: {work: ro}
  docs:
    path: /c
    consumers: {db: rw}
`, want: []string{
			"infra.yml:9:11: domains.work.machines.web.devices.sv-course: generated device \"sv-course\" collides with a device of the same name in devices",
			"infra.yml:10:53: domains.work.machines.web.devices.other.path: mount path \"/shared/course\" is used twice on machine \"web\" (sv-course, other)",
		}},
		{name: "item18/V28 two volumes on one path", src: zoneHead + `  work:
    machines:
      web: {}
shared_volumes:
  a:
    path: /data
    consumers: {work: ro}
  b:
    path: /data
    consumers: {web: rw}
`, want: []string{
			"infra.yml:13:11: shared_volumes.b.path: mount path \"/data\" is used twice on machine \"web\" (sv-a, sv-b)",
		}},
		{name: "W11 consumer names a domain and a machine", src: zoneHead + `  work:
    machines:
      web: {}
  web:
    machines:
      other: {}
shared_volumes:
  a:
    consumers: {web: ro}
`, want: []string{
			"warning: infra.yml:13:17: shared_volumes.a.consumers.web: \"web\" names both a domain and a machine; it is read as the domain",
		}},
		{name: "W15 propagate true", src: zoneHead + `  work: {}
shared_volumes:
  a:
    propagate: true
    consumers: {work: ro}
  b:
    propagate: false
    consumers: {work: ro}
`, want: []string{
			"warning: infra.yml:8:16: shared_volumes.a.propagate: propagate has no effect in this version",
		}},
		{name: "consumer with its own id map", src: zoneHead + `  work:
    machines:
      iso:
        config: {security.idmap.isolated: "true"}
      vm1:
        type: vm
        config: {security.privileged: "true"}
      plain: {}
shared_volumes:
  a:
    consumers: {work: rw}
`, want: []string{
			"warning: infra.yml:8:43: domains.work.machines.iso.config[\"security.idmap.isolated\"]: machine \"iso\" sets security.idmap.isolated: its id map differs from the other containers', so the files of shared volume \"a\" do not keep their owners there",
		}},
		{name: "shift true is refused, false accepted", src: zoneHead + `  work: {}
shared_volumes:
  a:
    shift: true
    consumers: {work: ro}
  b:
    shift: false
    consumers: {work: rw}
`, want: []string{
			"infra.yml:8:12: shared_volumes.a.shift: shift: true is not supported: Incus refuses shift on the restricted host paths of anklume projects\n  hint: remove the key: the directory is created owned by the containers' root, so they can use it without shift",
		}},
	})
}

// TestStorageVolumes covers N17.
func TestStorageVolumes(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "N17 volume device collides", src: zoneHead + `  work:
    machines:
      web:
        storage_volumes:
          data: {size: 1GiB, path: /data}
          nopath: {size: 1GiB}
        devices:
          data: {type: disk, source: /srv/d, path: /other}
          nopath: {type: usb}
`, want: []string{
			"infra.yml:9:11: domains.work.machines.web.storage_volumes.data: generated device \"data\" collides with a device of the same name in devices",
		}},
		{name: "N17 different sizes", src: "project_name: p\nglobal:\n  addressing: {}\n  storage_pool: fast\ndomains:\n" + `  work:
    machines:
      a:
        storage_volumes:
          data: {size: 10GiB}
          logs: {size: 1GiB, pool: slow}
      b:
        storage_volumes:
          data: {size: 10240MiB}
          logs: {size: 2GiB}
      c:
        storage_volumes:
          data: {size: 20GiB, pool: fast}
          logs: {size: 3GiB, pool: slow}
  other:
    machines:
      d:
        storage_volumes:
          data: {size: 5GiB}
`, want: []string{
			"infra.yml:18:24: domains.work.machines.c.storage_volumes.data.size: storage volume \"data\" is declared with different sizes (10GiB, 20GiB)",
			"infra.yml:19:24: domains.work.machines.c.storage_volumes.logs.size: storage volume \"logs\" is declared with different sizes (1GiB, 3GiB)",
		}},
	})
}
