package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	doctorcmd "github.com/anklume/anklume/cmd/doctor"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/doctor"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/nftables"
)

const psot = `project_name: doc
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web:
        type: lxc
`

// sys is a healthy host: every binary present, br_netfilter on, systemd
// with the unit enabled, the table in sync.
func sys() doctor.Env {
	return doctor.Env{
		LookPath:          func(n string) (string, error) { return "/usr/sbin/" + n, nil },
		BridgeNF:          func() ([]byte, error) { return []byte("1\n"), nil },
		Systemd:           func() bool { return true },
		UnitEnabled:       func(context.Context) (bool, error) { return true, nil },
		NFT:               func(context.Context, []byte) (nftables.State, []byte, error) { return nftables.InSync, nil, nil },
		ConnectionPlugins: func(context.Context) ([]string, error) { return []string{"local", "ssh"}, nil },
	}
}

// run runs doctor in dir against srv (nil: the connection fails).
func run(t *testing.T, dir string, srv incusx.Server, env doctor.Env, ifaces []host.Interface, jsonOut bool) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	vars := map[string]string{hostenv.EnvContextDir: t.TempDir(), hostenv.EnvHostResources: "cpu=10,memory=40GiB"}
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:  func(k string) string { return vars[k] },
		Getwd:   func() (string, error) { return dir, nil },
		FS:      func(d string) fs.FS { return os.DirFS(d) },
		Globals: &cmdutil.GlobalOptions{},
		Host: func(remote bool) (host.Options, error) {
			return hostenv.Gather(hostenv.Sys{
				Getenv:     func(k string) string { return vars[k] },
				ReadFile:   os.ReadFile,
				Interfaces: func() ([]host.Interface, error) { return ifaces, nil },
			}, remote)
		},
		Incus: func(context.Context, string) (incusx.Server, error) {
			if srv == nil {
				return nil, errors.New("connecting to Incus: no socket")
			}
			return srv, nil
		},
	}
	var got *doctorcmd.Options
	cmd := doctorcmd.NewCmdDoctor(f, func(o *doctorcmd.Options) error { got = o; return nil })
	args := []string{}
	if jsonOut {
		args = append(args, "--json")
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got.Sys = env
	err := doctorcmd.Run(context.Background(), got)
	return out.String(), errOut.String(), err
}

func psotDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(psot), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDoctorText: every check in the order of §12.8, `[status] id: text`,
// exit 1 when a check fails.
func TestDoctorText(t *testing.T) {
	fake := incusx.NewFake()
	out, _, err := run(t, psotDir(t), fake, sys(), nil, false)
	want := "[ok] incus.socket: connected to the local Incus daemon\n" +
		"[ok] incus.version: Incus 6.0.4\n" +
		"[warn] storage.pool: storage pool \"default\" uses the dir driver: snapshots and copies are full copies and quotas are not enforced; prefer zfs or btrfs\n" +
		"[ok] nft.binary: /usr/sbin/nft\n" +
		"[ok] nft.br_netfilter: bridge netfilter is on\n" +
		"[ok] nft.persist: anklume-nftables.service is enabled\n" +
		"[ok] nft.status: table inet anklume is in sync\n" +
		"[ok] ansible.playbook: /usr/sbin/ansible-playbook\n" +
		"[ok] ansible.incus_connection: community.general.incus is not installed; the tree uses the bundled anklume_incus plugin\n" +
		"[ok] host.subnets: no domain subnet overlaps a host interface\n" +
		"[ok] lock: no lock is held\n" +
		"[warn] tree.uptodate: "
	if err != nil || !strings.HasPrefix(out, want) {
		t.Fatalf("err %v\n%s\nwant prefix:\n%s", err, out, want)
	}
	if !strings.Contains(out, "run anklume sync\n[ok] incus.orphans: no orphan objects\n") {
		t.Errorf("tail:\n%s", out)
	}
}

// TestDoctorJSON is §16 #93 for doctor: the §12.8 shape, checks in order,
// failed counted, exit 1.
func TestDoctorJSON(t *testing.T) {
	env := sys()
	env.LookPath = func(n string) (string, error) { return "", errors.New("not found") }
	env.Systemd = func() bool { return false }
	env.NFT = func(context.Context, []byte) (nftables.State, []byte, error) { return nftables.NotLoaded, nil, nil }
	ifaces := []host.Interface{{Name: "eth9", CIDR: "10.110.0.7/24"}}
	out, _, err := run(t, psotDir(t), nil, env, ifaces, true)
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Errorf("err = %v, want exit 1", err)
	}
	var doc struct {
		FormatVersion *int `json:"format_version"`
		Checks        []map[string]any
		Failed        *int
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || doc.FormatVersion == nil || *doc.FormatVersion != 1 || doc.Failed == nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	var ids []string
	failed := 0
	status := map[string]string{}
	for _, c := range doc.Checks {
		if len(c) != 3 || c["id"] == nil || c["status"] == nil || c["text"] == nil {
			t.Errorf("check %v: want exactly id, status, text", c)
		}
		id, st := c["id"].(string), c["status"].(string)
		ids = append(ids, id)
		status[id] = st
		if st == "fail" {
			failed++
		}
	}
	if strings.Join(ids, " ") != strings.Join(doctor.IDs(), " ") {
		t.Errorf("ids %v", ids)
	}
	if *doc.Failed != failed {
		t.Errorf("failed = %d, counted %d", *doc.Failed, failed)
	}
	for id, want := range map[string]string{"incus.socket": "fail", "nft.binary": "fail", "nft.persist": "warn",
		"nft.status": "fail", "ansible.playbook": "warn", "host.subnets": "fail", "lock": "warn"} {
		if status[id] != want {
			t.Errorf("%s: status %q, want %q", id, status[id], want)
		}
	}
}

// TestDoctorServerSilent: a client is made without contacting the server,
// so a server that never answers must not be reported as connected; the
// checks that need it are not checked, never ok.
func TestDoctorServerSilent(t *testing.T) {
	fake := incusx.NewFake()
	fake.Fail("ServerInfo", "", errors.New("dial unix /var/lib/incus/unix.socket: connect: connection refused"))
	out, _, err := run(t, psotDir(t), fake, sys(), nil, false)
	if err == nil {
		t.Error("doctor succeeded without a server")
	}
	for _, want := range []string{
		"[fail] incus.socket: cannot connect to Incus: reading server information: dial unix /var/lib/incus/unix.socket: connect: connection refused\n",
		"[warn] incus.version: not checked: Incus is not reachable\n",
		"[warn] storage.pool: not checked: Incus is not reachable\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[ok] incus") || strings.Contains(out, "[ok] storage") {
		t.Errorf("ok for something not checked:\n%s", out)
	}
}
