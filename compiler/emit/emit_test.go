package emit_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/emit"
)

const twoDomains = `project_name: demo
global:
  addressing: {}
domains:
  zeta:
    trust_level: trusted
    machines:
      zz-web:
        type: lxc
      aa-db:
        type: lxc
  alpha:
    trust_level: semi-trusted
    machines:
      al-box:
        type: lxc
  off:
    enabled: false
    trust_level: semi-trusted
    machines:
      off-box:
        type: lxc
`

// TestTreeOrder: the write order of §6.2: group_vars/all.yml; per enabled
// domain in declaration order its inventory, group_vars and host_vars;
// then everything else byte-wise. Nothing is written for a disabled
// domain.
func TestTreeOrder(t *testing.T) {
	files := emit.Tree(compileText(t, []byte(twoDomains)))
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	head := []string{
		"group_vars/all.yml",
		"inventory/zeta.yml", "group_vars/zeta.yml", "host_vars/zz-web.yml", "host_vars/aa-db.yml",
		"inventory/alpha.yml", "group_vars/alpha.yml", "host_vars/al-box.yml",
	}
	if len(paths) < len(head) || !reflect.DeepEqual(paths[:len(head)], head) {
		t.Fatalf("paths start with\n%q\nwant\n%q", paths, head)
	}
	rest := paths[len(head):]
	if !sort.StringsAreSorted(rest) {
		t.Errorf("files after the variables are not in byte-wise order: %q", rest)
	}
	for _, p := range paths {
		if strings.Contains(p, "off") {
			t.Errorf("%s written for a disabled domain", p)
		}
	}
	for _, want := range []string{"site.yml", "ansible.cfg"} {
		if !contains(rest, want) {
			t.Errorf("%s missing from the tree", want)
		}
	}
}

// TestKnownNames: domains and machines of disabled domains count as known
// (§6.9).
func TestKnownNames(t *testing.T) {
	d, m := emit.KnownNames(compileText(t, []byte(twoDomains)))
	if want := []string{"zeta", "alpha", "off"}; !reflect.DeepEqual(d, want) {
		t.Errorf("domains %q, want %q", d, want)
	}
	if want := []string{"zz-web", "aa-db", "al-box", "off-box"}; !reflect.DeepEqual(m, want) {
		t.Errorf("machines %q, want %q", m, want)
	}
	if d, m := emit.KnownNames(nil); d != nil || m != nil {
		t.Errorf("KnownNames(nil) = %q, %q", d, m)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
