package semantic

import "testing"

// TestSeparators: a value that anklume joins into a comma-separated Incus
// list cannot hold a comma, so no list can gain an entry the user did not
// write as one (a nic parent "eth0,net-lab" gave a project another
// domain's bridge; a disk source "/srv/code,/" opened the whole host).
func TestSeparators(t *testing.T) {
	const access = `: anklume joins it into the comma-separated Incus list restricted.networks.access`
	const paths = `: anklume joins it into the comma-separated Incus list restricted.devices.disk.paths`
	runCases(t, []ruleCase{
		{name: "nic parent and network, disk source", src: zoneHead + `  work:
    machines:
      web:
        devices:
          n1: {type: nic, nictype: macvlan, parent: "eth0,net-lab"}
          n2: {type: nic, network: "net-a,net-b"}
          code: {type: disk, source: "/srv/code,/", path: /code}
`, want: []string{
			`infra.yml:9:53: domains.work.machines.web.devices.n1.parent: "eth0,net-lab" cannot contain ","` + access,
			`infra.yml:10:36: domains.work.machines.web.devices.n2.network: "net-a,net-b" cannot contain ","` + access,
			`infra.yml:11:38: domains.work.machines.web.devices.code.source: "/srv/code,/" cannot contain ","` + paths,
		}},
		{name: "profile device", src: zoneHead + `  work:
    profiles:
      p:
        devices:
          code: {type: disk, source: "/a,/b", path: /code}
`, want: []string{
			`infra.yml:9:38: domains.work.profiles.p.devices.code.source: "/a,/b" cannot contain ","` + paths,
		}},
		{name: "global bases and shared volume source", src: `project_name: demo
global:
  addressing: {}
  persistent_data_base: "/srv/d,/"
  shared_volumes_base: "/srv/s,/etc"
domains:
  work: {}
shared_volumes:
  docs:
    source: "/srv/docs,/root"
    path: /docs
    consumers: {work: ro}
`, want: []string{
			`infra.yml:4:25: global.persistent_data_base: "/srv/d,/" cannot contain ","` + paths,
			`infra.yml:5:24: global.shared_volumes_base: "/srv/s,/etc" cannot contain ","` + paths,
			`infra.yml:10:13: shared_volumes.docs.source: "/srv/docs,/root" cannot contain ","` + paths,
		}},
		{name: "no comma, no error", src: zoneHead + `  work:
    machines:
      web:
        devices:
          n1: {type: nic, nictype: macvlan, parent: eth0}
          code: {type: disk, source: /srv/code, path: /code}
`},
	})
}
