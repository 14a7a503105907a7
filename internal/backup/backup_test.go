package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/lxc/incus/v6/shared/api"

	_ "github.com/anklume/anklume/internal/goldenflag"
	"github.com/anklume/anklume/internal/incusx"
)

func fake(t *testing.T) *incusx.Fake {
	t.Helper()
	ctx := context.Background()
	f := incusx.NewFake()
	if err := f.CreateNetwork(ctx, api.NetworksPost{Name: "x", Type: "bridge"}); err != nil {
		t.Fatal(err)
	}
	err := f.CreateInstance(ctx, "default", api.InstancesPost{Name: "m1", Start: true,
		Source: api.InstanceSource{Type: "image", Alias: "anklume-test"},
		InstancePut: api.InstancePut{
			Config:  api.ConfigMap{"user.anklume.managed": "true", "user.anklume.infra": "t", "limits.memory": "1GiB"},
			Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": "x", "ipv4.address": "10.0.0.1"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCreateRestore is §16 #71: backup files have mode 0600 and are never
// overwritten without force; an age-encrypted backup restores with its
// identity, and ownership is kept only for a machine of the PSOT.
func TestCreateRestore(t *testing.T) {
	ctx := context.Background()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		recipients []age.Recipient
		file       string
	}{
		{"plain", nil, "m1-20260102-030405.tar.gz"},
		{"age", []age.Recipient{id.Recipient()}, "m1-20260102-030405.tar.gz.age"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fake(t)
			dir := filepath.Join(t.TempDir(), "backups")
			o := CreateOptions{Project: "default", Instance: "m1", Machine: "m1", Dir: dir, Recipients: tc.recipients, Now: t0}
			path, err := Create(ctx, f, o)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(path) != tc.file {
				t.Errorf("file %s, want %s", path, tc.file)
			}
			st, _ := os.Stat(path)
			dst, _ := os.Stat(dir)
			if st.Mode().Perm() != FileMode || dst.Mode().Perm() != DirMode {
				t.Errorf("modes %v %v", st.Mode(), dst.Mode())
			}
			before, _ := os.ReadFile(path)
			var ee *ExistsError
			if _, err := Create(ctx, f, o); !errors.As(err, &ee) {
				t.Errorf("second Create: %v, want ExistsError", err)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("refused Create changed the file")
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			o.Force = true
			if _, err := Create(ctx, f, o); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != FileMode {
				t.Errorf("forced Create left mode %v", st.Mode())
			}
			if tc.recipients != nil {
				var enc *EncryptedError
				err := Restore(ctx, f, RestoreOptions{Path: path, Project: "default", Instance: "r"})
				if !errors.As(err, &enc) || err.Error() != path+" is encrypted; pass --identity FILE" {
					t.Errorf("Restore without identity: %v", err)
				}
			}
			ids := []age.Identity{id}
			err = Restore(ctx, f, RestoreOptions{Path: path, Identities: ids, Project: "default", Instance: "m1"})
			var ex *ExistingError
			if !errors.As(err, &ex) {
				t.Errorf("Restore onto m1: %v", err)
			}
			if err := Restore(ctx, f, RestoreOptions{Path: path, Identities: ids, Project: "default", Instance: "r"}); err != nil {
				t.Fatal(err)
			}
			r, _, err := f.Instance(ctx, "default", "r")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "Running" || r.Config["limits.memory"] != "1GiB" || r.Config["user.anklume.managed"] != "" || r.Devices["eth0"] != nil {
				t.Errorf("restored copy: status %s config %v devices %v", r.Status, r.Config, r.Devices)
			}
			if err := Restore(ctx, f, RestoreOptions{Path: path, Identities: ids, Project: "default", Instance: "k", KeepOwnership: true, NoStart: true}); err != nil {
				t.Fatal(err)
			}
			k, _, _ := f.Instance(ctx, "default", "k")
			if k.Config["user.anklume.managed"] != "true" || k.Devices["eth0"]["ipv4.address"] != "10.0.0.1" {
				t.Errorf("kept ownership: config %v devices %v", k.Config, k.Devices)
			}
		})
	}
}

func TestRecipients(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	good := id.Recipient().String()
	rs, err := ReadRecipients(strings.NewReader("# comment\n\n" + good + "\n  " + good + "  \n"))
	if err != nil || len(rs) != 2 {
		t.Errorf("ReadRecipients = %d %v", len(rs), err)
	}
	for _, bad := range []string{"age1nonsense", "ssh-ed25519 AAAA", "hello"} {
		_, err := ParseRecipient(bad)
		if err == nil || err.Error() != `invalid recipient "`+bad+`"` {
			t.Errorf("ParseRecipient(%q) = %v", bad, err)
		}
	}
	if m := MachineOf("/x/web-1-20260102-030405.tar.gz.age"); m != "web-1" {
		t.Errorf("MachineOf = %q", m)
	}
	if m := MachineOf("x.tar.gz"); m != "" {
		t.Errorf("MachineOf(x.tar.gz) = %q", m)
	}
}
