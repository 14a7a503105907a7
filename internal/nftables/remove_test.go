package nftables

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRemove checks flush step 8 (SPEC.md §12.2, §16 #70): the table is
// deleted when it is this infrastructure's or has no comment, the
// persisted file and the systemd unit are removed (disabled first under
// systemd), another infrastructure's table and file are kept, and every
// failure is a warning.
func TestRemove(t *testing.T) {
	const ours = "table inet anklume {\n\tcomment \"anklume infra=demo\"\n}\n"
	const theirs = "table inet anklume {\n\tcomment \"anklume infra=other\"\n}\n"
	tests := []struct {
		name      string
		tables    string // nft list tables inet
		live      string
		file      string // persisted file content ("" absent)
		unit      bool
		systemd   bool
		notRoot   bool
		wantCalls []string
		wantOut   string
		wantWarn  string
		fileKept  bool
		unitKept  bool
	}{
		{
			name: "ours, with file and unit under systemd", tables: "table inet anklume\n", live: ours,
			file: ours, unit: true, systemd: true,
			wantCalls: []string{"nft list tables inet", "nft -s list table inet anklume", "nft delete table inet anklume",
				"systemctl disable anklume-nftables.service", "systemctl daemon-reload"},
			wantOut: "removed: table inet anklume\nremoved: <dir>/etc/nftables.d/anklume-isolation.nft\n" +
				"disabled: anklume-nftables.service\nremoved: <dir>/etc/systemd/system/anklume-nftables.service\n",
		},
		{
			name: "table without comment is removed", tables: "table inet anklume\n", live: "table inet anklume {\n}\n",
			wantCalls: []string{"nft list tables inet", "nft -s list table inet anklume", "nft delete table inet anklume"},
			wantOut:   "removed: table inet anklume\n",
		},
		{
			name: "not loaded, unit without systemd", tables: "table inet incus\n", unit: true,
			wantCalls: []string{"nft list tables inet"},
			wantOut:   "removed: <dir>/etc/systemd/system/anklume-nftables.service\n",
		},
		{
			name: "another infrastructure's table and file are kept", tables: "table inet anklume\n", live: theirs,
			file: theirs, unit: true,
			wantCalls: []string{"nft list tables inet", "nft -s list table inet anklume"},
			wantWarn: "warning: not removing table inet anklume: it belongs to infrastructure \"other\"\n" +
				"warning: not removing <dir>/etc/nftables.d/anklume-isolation.nft: it belongs to infrastructure \"other\"\n",
			fileKept: true, unitKept: true,
		},
		{
			name: "not root: warning, files still removed", notRoot: true, file: ours,
			wantWarn: "warning: not removing table inet anklume: nftables deploy needs root (CAP_NET_ADMIN)\n",
			wantOut:  "removed: <dir>/etc/nftables.d/anklume-isolation.nft\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := &fakeHost{tables: tt.tables, live: tt.live}
			s := newSystem(t, h, dir, "", tt.systemd, !tt.notRoot)
			base := s.Run
			s.Run = func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
				if name == "/usr/sbin/nft" && slices.Equal(args, []string{"delete", "table", "inet", "anklume"}) {
					h.calls = append(h.calls, "nft "+strings.Join(args, " "))
					return nil, nil, nil
				}
				return base(ctx, name, args...)
			}
			file := filepath.Join(s.PersistDir, PersistName)
			unit := filepath.Join(s.UnitDir, UnitName)
			if tt.file != "" {
				writeTestFile(t, file, tt.file)
			}
			if tt.unit {
				writeTestFile(t, unit, "[Unit]\n")
			}
			var out, errOut bytes.Buffer
			s.Remove(context.Background(), RemoveOptions{Infra: "demo", Out: &out, ErrOut: &errOut})
			if !slices.Equal(h.calls, tt.wantCalls) {
				t.Errorf("calls:\n got %q\nwant %q", h.calls, tt.wantCalls)
			}
			if got := strings.ReplaceAll(out.String(), dir, "<dir>"); got != tt.wantOut {
				t.Errorf("out:\n got %q\nwant %q", got, tt.wantOut)
			}
			if got := strings.ReplaceAll(errOut.String(), dir, "<dir>"); got != tt.wantWarn {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.wantWarn)
			}
			if _, err := os.Stat(file); (err == nil) != tt.fileKept {
				t.Errorf("persisted file kept = %v, want %v", err == nil, tt.fileKept)
			}
			if _, err := os.Stat(unit); (err == nil) != tt.unitKept {
				t.Errorf("unit kept = %v, want %v", err == nil, tt.unitKept)
			}
		})
	}
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
