package emit_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/tree"
)

// trustLevels are the five zones of §14.
var trustLevels = []string{"admin", "trusted", "semi-trusted", "untrusted", "disposable"}

// trickyText are descriptions that exercise every quoting style of §6.4.
var trickyText = []string{
	"plain words", "yes", "010", "a: b", "x #y", "- dash", "'quoted'", `say "hi"`, "trailing ",
	"ünïcödé ✓", "#hash", "null", "1.5", "2024-01-02", "key:", "@at", "%pct", "",
}

// randomInfra writes a valid zone-mode PSOT drawn from r: 1–6 domains
// (some disabled, at least one enabled), every trust level, 0–4 machines
// of both types with roles, config, ephemeral flags, descriptions that
// need quoting, and policies between enabled domains, machines and the
// host.
func randomInfra(r *rand.Rand) []byte {
	var b strings.Builder
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	b.WriteString("format_version: 1\nproject_name: " + strconv.Quote("prop-"+strconv.Itoa(r.IntN(1000))) + "\n")
	b.WriteString("global:\n  addressing: {}\n  default_os_image: images:debian/13\n")
	nd := 1 + r.IntN(6)
	type dom struct {
		name     string
		enabled  bool
		machines []string
	}
	var doms []dom
	b.WriteString("domains:\n")
	machineN := 0
	for i := 0; i < nd; i++ {
		d := dom{name: fmt.Sprintf("d%d-%s", i, pick([]string{"work", "lab", "ai", "web"})), enabled: i == 0 || r.IntN(5) > 0}
		trust := pick(trustLevels)
		fmt.Fprintf(&b, "  %s:\n", d.name)
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "    description: %s\n", strconv.Quote(pick(trickyText)))
		}
		fmt.Fprintf(&b, "    trust_level: %s\n", trust)
		if !d.enabled {
			b.WriteString("    enabled: false\n")
		}
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, "    ephemeral: %v\n", r.IntN(2) == 0)
		}
		nm := r.IntN(5)
		if nm == 0 {
			b.WriteString("    machines: {}\n")
		} else {
			b.WriteString("    machines:\n")
		}
		for j := 0; j < nm; j++ {
			name := fmt.Sprintf("m%d-%s", machineN, pick([]string{"web", "db", "ws", "box"}))
			machineN++
			d.machines = append(d.machines, name)
			typ := "lxc"
			if r.IntN(3) == 0 {
				typ = "vm"
			}
			fmt.Fprintf(&b, "      %s:\n        type: %s\n", name, typ)
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, "        description: %s\n", strconv.Quote(pick(trickyText)))
			}
			if r.IntN(3) == 0 {
				fmt.Fprintf(&b, "        ephemeral: %v\n", r.IntN(2) == 0)
			}
			switch r.IntN(3) {
			case 0:
				b.WriteString("        roles: [base_system]\n")
			case 1:
				b.WriteString("        roles: [base_system, admin_bootstrap]\n")
			}
			if r.IntN(3) == 0 {
				b.WriteString("        config:\n          limits.cpu: \"1\"\n          user.note: " + strconv.Quote(pick(trickyText)) + "\n")
			}
			if r.IntN(4) == 0 {
				fmt.Fprintf(&b, "        gpu: false\n")
			}
			if r.IntN(4) == 0 {
				fmt.Fprintf(&b, "        boot_autostart: %v\n        boot_priority: %d\n", r.IntN(2) == 0, r.IntN(100))
			}
		}
		doms = append(doms, d)
	}
	var ends []string
	for _, d := range doms {
		if d.enabled {
			ends = append(ends, d.name)
			ends = append(ends, d.machines...)
		}
	}
	ends = append(ends, "host")
	np := r.IntN(4)
	if len(ends) > 1 && np > 0 {
		b.WriteString("network_policies:\n")
		for k := 0; k < np; k++ {
			from := r.IntN(len(ends))
			to := (from + 1 + r.IntN(len(ends)-1)) % len(ends)
			fmt.Fprintf(&b, "  - description: %s\n    from: %s\n    to: %s\n", strconv.Quote(pick(trickyText)), ends[from], ends[to])
			if r.IntN(3) == 0 {
				b.WriteString("    ports: all\n")
			} else {
				fmt.Fprintf(&b, "    ports: [%d, %d]\n    protocol: %s\n", 1+r.IntN(1024), 1024+r.IntN(60000), pick([]string{"tcp", "udp"}))
			}
			if r.IntN(3) == 0 {
				b.WriteString("    bidirectional: true\n")
			}
		}
	}
	return []byte(b.String())
}

// userTail is text a user appends after the managed block.
const userTail = "\nmy_custom_var: 42 # keep me\n"

// TestSyncProperties checks, for random valid infras (issue 3
// acceptance): sync twice is byte-identical and the second writes nothing
// (§16 #35); user text appended after the block survives a re-sync
// (§16 #36); every managed file has exactly one BEGIN and one END line
// (§16 #37); no generated variable file contains ansible_connection or
// ansible_user (§16 #42).
func TestSyncProperties(t *testing.T) {
	n := 30
	if testing.Short() {
		n = 8
	}
	for seed := 0; seed < n; seed++ {
		t.Run(strconv.Itoa(seed), func(t *testing.T) {
			t.Parallel()
			data := randomInfra(rand.New(rand.NewPCG(uint64(seed), 0x616e6b6c756d65)))
			m := compileText(t, data)
			files := emit.Tree(m)
			base := t.TempDir()
			syncDir(t, base, files)
			first := readTree(t, base)

			if c, u, _ := syncDir(t, base, emit.Tree(compileText(t, data))); c != 0 || u != 0 {
				t.Errorf("second sync: %d created, %d updated", c, u)
			}
			second := readTree(t, base)
			for p, b := range first {
				if !bytes.Equal(second[p], b) {
					t.Errorf("%s changed on the second sync", p)
				}
			}

			var managed []string
			for _, f := range files {
				data := first[f.Path]
				if f.Class != tree.Managed {
					continue
				}
				managed = append(managed, f.Path)
				if c := countLines(data, tree.Begin); c != 1 {
					t.Errorf("%s: %d BEGIN lines", f.Path, c)
				}
				if c := countLines(data, tree.End); c != 1 {
					t.Errorf("%s: %d END lines", f.Path, c)
				}
				if isVars(f.Path) && (bytes.Contains(data, []byte("ansible_connection")) || bytes.Contains(data, []byte("ansible_user"))) {
					t.Errorf("%s mentions ansible_connection or ansible_user:\n%s", f.Path, data)
				}
			}

			for _, p := range managed {
				appendFile(t, filepath.Join(base, filepath.FromSlash(p)), userTail)
			}
			if c, u, _ := syncDir(t, base, emit.Tree(compileText(t, data))); c != 0 || u != 0 {
				t.Errorf("sync after appending user text: %d created, %d updated, want 0, 0", c, u)
			}
			third := readTree(t, base)
			for _, p := range managed {
				if want := append(append([]byte{}, first[p]...), userTail...); !bytes.Equal(third[p], want) {
					t.Errorf("%s: user text lost:\n%s", p, third[p])
				}
			}

			// A PSOT change rewrites blocks; the user's text still survives.
			changed := bytes.Replace(data, []byte("project_name: \"prop-"), []byte("project_name: \"changed-prop-"), 1)
			if _, u, _ := syncDir(t, base, emit.Tree(compileText(t, changed))); u == 0 {
				t.Error("changing project_name updated no file")
			}
			fourth := readTree(t, base)
			for _, p := range managed {
				if got, ok := fourth[p]; !ok || !bytes.HasSuffix(got, []byte(userTail)) || countLines(got, tree.Begin) != 1 {
					t.Errorf("%s after an update: user text lost or block duplicated:\n%s", p, got)
				}
			}
		})
	}
}

// countLines counts the lines of data equal to want.
func countLines(data []byte, want string) int {
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if l == want {
			n++
		}
	}
	return n
}

// isVars reports whether p is an inventory, group_vars or host_vars file.
func isVars(p string) bool {
	return strings.HasPrefix(p, "inventory/") || strings.HasPrefix(p, "group_vars/") || strings.HasPrefix(p, "host_vars/")
}

func appendFile(t *testing.T, p, text string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
