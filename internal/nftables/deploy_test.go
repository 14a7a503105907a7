package nftables

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

const psot = `format_version: 1
project_name: demo
global:
  addressing: {}
domains:
  lab:
    trust_level: trusted
    machines:
      lab-1: {}
`

// compileModel compiles psot with the §16 host options.
func compileModel(t *testing.T, y string) *model.Infra {
	t.Helper()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(y)}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil {
		t.Fatalf("compile: %v\n%s", err, dl)
	}
	return res.Model
}

// fakeHost is a scripted nft and systemctl that record every call.
type fakeHost struct {
	calls []string
	// tables is the output of `nft list tables inet`.
	tables string
	// live is the output of `nft -s list table inet anklume`.
	live string
	// canonical is the output of the unshare script.
	canonical string
	// checkErr fails `nft -c -f`.
	checkErr string
	// checked holds the bytes `nft -c -f` and `nft -f` were given.
	checked, loaded []byte
}

func (h *fakeHost) run(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
	call := filepath.Base(name) + " " + strings.Join(args, " ")
	h.calls = append(h.calls, call)
	fail := func(msg string) ([]byte, []byte, error) {
		return nil, []byte(msg), errors.New("exit status 1")
	}
	switch {
	case call == "nft list tables inet":
		return []byte(h.tables), nil, nil
	case call == "nft -s list table inet anklume":
		return []byte(h.live), nil, nil
	case len(args) == 3 && args[0] == "-c" && args[1] == "-f":
		h.checked, _ = os.ReadFile(args[2])
		if h.checkErr != "" {
			return fail(args[2] + ":3:1-5: Error: " + h.checkErr)
		}
		return nil, nil, nil
	case len(args) == 2 && args[0] == "-f":
		h.loaded, _ = os.ReadFile(args[1])
		return nil, nil, nil
	case name == "unshare":
		return []byte(h.canonical), nil, nil
	case name == "systemctl":
		return nil, nil, nil
	}
	return fail("unexpected call " + call)
}

// nftCalls returns the recorded calls whose program is nft.
func (h *fakeHost) nftCalls() []string {
	var out []string
	for _, c := range h.calls {
		if strings.HasPrefix(c, "nft ") {
			out = append(out, c)
		}
	}
	return out
}

// newSystem returns a System over h whose files live under dir: the
// persist and unit directories, and a bridge-nf file holding bridgeNF
// ("" leaves it absent). systemd makes the systemd run directory exist.
func newSystem(t *testing.T, h *fakeHost, dir, bridgeNF string, systemd, root bool) System {
	t.Helper()
	s := System{
		NFT:          "nft",
		LookPath:     func(string) (string, error) { return "/usr/sbin/nft", nil },
		Run:          h.run,
		Privileged:   func() bool { return root },
		BridgeNFPath: filepath.Join(dir, "proc", "bridge-nf-call-iptables"),
		PersistDir:   filepath.Join(dir, "etc", "nftables.d"),
		UnitDir:      filepath.Join(dir, "etc", "systemd", "system"),
		SystemdDir:   filepath.Join(dir, "run", "systemd", "system"),
		TempDir:      t.TempDir(),
	}
	if bridgeNF != "" {
		if err := os.MkdirAll(filepath.Dir(s.BridgeNFPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.BridgeNFPath, []byte(bridgeNF), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if systemd {
		if err := os.MkdirAll(s.SystemdDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestDeploy runs deploy against the fake host (§16 #51, #53, #85).
func TestDeploy(t *testing.T) {
	m := compileModel(t, psot)
	rendered := nft.Render(m)
	tests := []struct {
		name     string
		existing string // nftables/anklume-isolation.nft before deploy ("" absent)
		opts     DeployOptions
		bridgeNF string
		systemd  bool
		notRoot  bool
		noNFT    bool
		tables   string
		live     string
		checkErr string

		wantErr     string
		wantHint    string
		wantStdout  string // substring
		wantStderr  string // exact
		wantNFT     []string
		wantLoaded  bool
		wantPersist bool
		wantUnit    bool
		wantFile    bool // the base file was written
	}{
		{
			name: "fresh host with systemd", bridgeNF: "1\n", systemd: true,
			wantNFT:    []string{"nft list tables inet", "nft -c -f", "nft -f"},
			wantStdout: "created: nftables/anklume-isolation.nft\nloaded: table inet anklume (anklume infra=demo)\npersisted: ",
			wantLoaded: true, wantPersist: true, wantUnit: true, wantFile: true,
		},
		{
			name: "no systemd: warning, file persisted", bridgeNF: "1",
			wantNFT:    []string{"nft list tables inet", "nft -c -f", "nft -f"},
			wantStderr: "warning: systemd is not running; PERSIST is written but nothing loads it at boot, so the isolation rules will not survive a reboot\n",
			wantLoaded: true, wantPersist: true, wantFile: true,
		},
		{
			name: "bridge netfilter absent: warning, still loads", systemd: true,
			wantStderr: "warning: bridge netfilter is off; rules inside one domain bridge are not enforced\n" +
				"  hint: modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 (persist in /etc/modules-load.d/ and /etc/sysctl.d/)\n",
			wantNFT:    []string{"nft list tables inet", "nft -c -f", "nft -f"},
			wantLoaded: true, wantPersist: true, wantUnit: true, wantFile: true,
		},
		{
			name: "bridge netfilter 0: warning", bridgeNF: "0\n", systemd: true, opts: DeployOptions{NoPersist: true},
			wantStderr: "warning: bridge netfilter is off; rules inside one domain bridge are not enforced\n" +
				"  hint: modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 (persist in /etc/modules-load.d/ and /etc/sysctl.d/)\n",
			wantNFT:    []string{"nft list tables inet", "nft -c -f", "nft -f"},
			wantLoaded: true, wantFile: true,
		},
		{
			name: "skip preflight: no warning, no root check", notRoot: true, systemd: true, opts: DeployOptions{SkipPreflight: true, NoPersist: true},
			wantNFT:    []string{"nft list tables inet", "nft -c -f", "nft -f"},
			wantLoaded: true, wantFile: true,
		},
		{
			name: "not root", bridgeNF: "1", notRoot: true,
			wantErr: "nftables deploy needs root (CAP_NET_ADMIN)", wantHint: "run it as root: sudo anklume nftables deploy",
		},
		{
			name: "nft missing", bridgeNF: "1", noNFT: true,
			wantErr: "nft not found in PATH", wantHint: "install nftables",
		},
		{
			name: "remote refused even without preflight", opts: DeployOptions{Remote: "r", SkipPreflight: true},
			wantErr: MsgRemote,
		},
		{
			name: "dry run: prints the file, installs nothing", bridgeNF: "1", systemd: true, opts: DeployOptions{DryRun: true},
			wantNFT:    []string{"nft list tables inet", "nft -c -f"},
			wantStdout: "# === MANAGED BY infra.yml ===\n",
		},
		{
			name: "guard: flush ruleset outside the block, before nft", existing: "flush ruleset\n", bridgeNF: "1", systemd: true,
			wantErr: "nftables/anklume-isolation.nft:BLOCK+1: refusing to deploy: flush ruleset is not allowed",
		},
		{
			name: "guard: table inet filter outside", existing: "# keep\ntable inet filter {\n}\n", bridgeNF: "1", systemd: true,
			wantErr: "nftables/anklume-isolation.nft:BLOCK+2: refusing to deploy: only comments may appear outside the managed section",
		},
		{
			name: "guard: comments outside are kept", existing: "# my notes\n", bridgeNF: "1", systemd: true, opts: DeployOptions{NoPersist: true},
			wantNFT:    []string{"nft list tables inet", "nft -c -f", "nft -f"},
			wantStdout: "updated: nftables/anklume-isolation.nft\n",
			wantLoaded: true, wantFile: true,
		},
		{
			name: "owned by another infrastructure", bridgeNF: "1", systemd: true,
			tables:  "table inet filter\ntable inet anklume\n",
			live:    "table inet anklume {\n\tcomment \"anklume infra=other-lab\"\n\tchain isolation {\n\t}\n}\n",
			wantNFT: []string{"nft list tables inet", "nft -s list table inet anklume"},
			wantErr: `table inet anklume on this host belongs to infrastructure "other-lab"; refusing to replace it`, wantHint: HintOwner,
		},
		{
			name: "own table is replaced", bridgeNF: "1", systemd: true, opts: DeployOptions{NoPersist: true},
			tables:     "table inet anklume\n",
			live:       "table inet anklume {\n\tcomment \"anklume infra=demo\"\n}\n",
			wantNFT:    []string{"nft list tables inet", "nft -s list table inet anklume", "nft -c -f", "nft -f"},
			wantLoaded: true, wantFile: true,
		},
		{
			name: "table without an anklume comment is replaced", bridgeNF: "1", systemd: true, opts: DeployOptions{NoPersist: true},
			tables:     "table inet anklume\n",
			live:       "table inet anklume {\n\tchain isolation {\n\t}\n}\n",
			wantNFT:    []string{"nft list tables inet", "nft -s list table inet anklume", "nft -c -f", "nft -f"},
			wantLoaded: true, wantFile: true,
		},
		{
			name: "check fails: nft's output, nothing written", bridgeNF: "1", systemd: true, checkErr: "syntax error",
			wantNFT: []string{"nft list tables inet", "nft -c -f"},
			wantErr: "nft -c -f nftables/anklume-isolation.nft failed:\nnftables/anklume-isolation.nft:3:1-5: Error: syntax error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base")
			target := filepath.Join(base, filepath.FromSlash(nft.Path))
			if tt.existing != "" {
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(target, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h := &fakeHost{tables: tt.tables, live: tt.live, checkErr: tt.checkErr}
			s := newSystem(t, h, dir, tt.bridgeNF, tt.systemd, !tt.notRoot)
			if tt.noNFT {
				s.LookPath = func(string) (string, error) { return "", exec.ErrNotFound }
			}
			var out, errOut bytes.Buffer
			opts := tt.opts
			opts.Model, opts.Base, opts.Out, opts.ErrOut = m, base, &out, &errOut
			err := s.Deploy(context.Background(), opts)

			if tt.wantErr != "" {
				// The block goes first, then a blank line, then the old text.
				n := strings.Count(string(tree.Block(rendered)), "\n") + 2
				wantErr := strings.NewReplacer("BLOCK+1", strconv.Itoa(n+1), "BLOCK+2", strconv.Itoa(n+2)).Replace(tt.wantErr)
				if err == nil || err.Error() != wantErr {
					t.Fatalf("err = %v, want %s", err, wantErr)
				}
				var e *Error
				if tt.wantHint != "" && (!errors.As(err, &e) || e.Hint != tt.wantHint) {
					t.Errorf("hint = %+v, want %s", e, tt.wantHint)
				}
			} else if err != nil {
				t.Fatalf("deploy: %v", err)
			}
			persisted := filepath.Join(s.PersistDir, PersistName)
			wantStderr := strings.ReplaceAll(tt.wantStderr, "PERSIST", persisted)
			if errOut.String() != wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", errOut.String(), wantStderr)
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout:\n%s\nwant it to contain:\n%s", out.String(), tt.wantStdout)
			}
			var got []string
			for _, c := range h.nftCalls() {
				f := strings.Fields(c)
				if len(f) == 4 && f[2] == "-f" || len(f) == 3 && f[1] == "-f" {
					c = strings.Join(f[:len(f)-1], " ") // drop the temporary path
				}
				got = append(got, c)
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantNFT, "\n") {
				t.Errorf("nft calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantNFT, "\n"))
			}
			if tt.wantLoaded != (h.loaded != nil) {
				t.Errorf("loaded = %v, want %v", h.loaded != nil, tt.wantLoaded)
			}
			if h.loaded != nil && !bytes.Equal(h.loaded, h.checked) {
				t.Error("the loaded bytes differ from the checked ones")
			}
			if h.checked != nil && !bytes.Contains(h.checked, rendered) {
				t.Errorf("checked file lacks the rendered ruleset:\n%s", h.checked)
			}
			data, ferr := os.ReadFile(target)
			if tt.wantFile {
				if ferr != nil || !bytes.Equal(data, h.loaded) {
					t.Errorf("base file (%v) differs from what was loaded:\n%s", ferr, data)
				}
			} else if string(data) != tt.existing {
				t.Errorf("base file changed:\n%s", data)
			}
			p, perr := os.ReadFile(persisted)
			if tt.wantPersist != (perr == nil) {
				t.Errorf("persisted file present = %v, want %v", perr == nil, tt.wantPersist)
			}
			if perr == nil {
				if !bytes.Equal(p, h.loaded) {
					t.Error("persisted file differs from what was loaded")
				}
				if fi, _ := os.Stat(persisted); fi.Mode().Perm() != 0o644 {
					t.Errorf("persisted mode %v", fi.Mode())
				}
			}
			unitPath := filepath.Join(s.UnitDir, UnitName)
			u, uerr := os.ReadFile(unitPath)
			if tt.wantUnit != (uerr == nil) {
				t.Fatalf("unit present = %v, want %v", uerr == nil, tt.wantUnit)
			}
			var systemctl []string
			for _, c := range h.calls {
				if strings.HasPrefix(c, "systemctl ") {
					systemctl = append(systemctl, c)
				}
			}
			if tt.wantUnit {
				if want := Unit("/usr/sbin/nft", persisted); !bytes.Equal(u, want) {
					t.Errorf("unit:\n%s", u)
				}
				if fi, _ := os.Stat(unitPath); fi.Mode().Perm() != 0o644 {
					t.Errorf("unit mode %v", fi.Mode())
				}
				if strings.Join(systemctl, "\n") != "systemctl daemon-reload\nsystemctl enable anklume-nftables.service" {
					t.Errorf("systemctl calls: %q", systemctl)
				}
			} else if len(systemctl) > 0 {
				t.Errorf("systemctl called: %q", systemctl)
			}
		})
	}
}

// TestUnit checks the unit of §7.7 step 7 byte for byte.
func TestUnit(t *testing.T) {
	want := `# written by anklume nftables deploy; removed by anklume flush
[Unit]
Description=anklume isolation rules (table inet anklume)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target incus.service incus-startup.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/nftables.d/anklume-isolation.nft

[Install]
WantedBy=sysinit.target
`
	if got := string(Unit("/usr/sbin/nft", "/etc/nftables.d/anklume-isolation.nft")); got != want {
		t.Errorf("got\n%s", got)
	}
}

// TestStatus compares listings through the fake host (§7.8).
func TestStatus(t *testing.T) {
	listing := "table inet anklume {\n\tcomment \"anklume infra=demo\"\n\tchain isolation {\n\t\tct state invalid drop\n\t}\n}\n"
	tests := []struct {
		name      string
		tables    string
		live      string
		canonical string
		want      State
		wantDiff  string
	}{
		{name: "not loaded", tables: "table inet filter\n", want: NotLoaded},
		{name: "in sync", tables: "table inet anklume\n", live: listing, canonical: listing, want: InSync},
		{name: "trailing blanks ignored", tables: "table inet anklume\n", live: strings.ReplaceAll(listing, "\n", " \n") + "\n", canonical: listing, want: InSync},
		{
			name: "drift", tables: "table inet anklume\n", canonical: listing, want: Drift,
			live: strings.Replace(listing, "\t\tct state invalid drop\n", "", 1),
			wantDiff: "--- live table inet anklume\n+++ rendered from the PSOT\n@@ -1,5 +1,6 @@\n" +
				" table inet anklume {\n \tcomment \"anklume infra=demo\"\n \tchain isolation {\n+\t\tct state invalid drop\n \t}\n }\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeHost{tables: tt.tables, live: tt.live, canonical: tt.canonical}
			s := newSystem(t, h, t.TempDir(), "", false, true)
			st, diff, err := s.Status(context.Background(), []byte("table inet anklume\n"))
			if err != nil {
				t.Fatal(err)
			}
			if st != tt.want || string(diff) != tt.wantDiff {
				t.Errorf("got %v\n%s\nwant %v\n%s", st, diff, tt.want, tt.wantDiff)
			}
			for _, c := range h.calls {
				if strings.HasPrefix(c, "nft -f") || strings.HasPrefix(c, "nft -c") {
					t.Errorf("status changed the host: %s", c)
				}
			}
		})
	}
}

// TestStateStrings checks the status lines of §7.8.
func TestStateStrings(t *testing.T) {
	for st, want := range map[State]string{InSync: "nftables: in sync", Drift: "nftables: drift", NotLoaded: "nftables: not loaded"} {
		if st.String() != want {
			t.Errorf("%d: %q", st, st.String())
		}
	}
}
