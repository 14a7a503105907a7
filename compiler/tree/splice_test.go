package tree

import (
	"errors"
	"strings"
	"testing"
)

const blk = Begin + "\n" + Notice + "\na: 1\n" + End

// TestSplice covers the table of §6.3 (§16 items 36, 37, 38, 80).
func TestSplice(t *testing.T) {
	tests := []struct {
		name   string
		old    string
		exists bool
		kind   Kind
		want   string
	}{
		// §16 #37: new files match the §6.3 layouts byte for byte.
		{"absent yaml", "", false, YAML, "---\n" + blk + "\n\n# Your custom variables below:\n"},
		{"absent preseed", "", false, Preseed, "---\n" + blk + "\n\n# Your custom preseed keys below (config:, storage_pools:, cluster:, ...):\n"},
		{"absent nft", "", false, NFT, blk + "\n"},
		// §16 #36: text outside survives, an edit inside is replaced.
		{"replace keeps outside", "# top\n---\n" + Begin + "\n" + Notice + "\na: 99 # edited\nb: 2\n" + End + "\n\nmine: x\n",
			true, YAML, "# top\n---\n" + blk + "\n\nmine: x\n"},
		// §16 #80: the newline after END is kept (and its absence too).
		{"end without newline", "---\n" + Begin + "\nold\n" + End, true, YAML, "---\n" + blk},
		{"end then text", "x\n" + Begin + "\n" + End + "\ny", true, YAML, "x\n" + blk + "\ny"},
		{"markers with trailing blanks", "---\n" + Begin + " \t\r\nold\n" + End + "\t \n", true, YAML, "---\n" + blk + "\n"},
		{"begin with leading space is no marker", " " + Begin + "\n", true, NFT, blk + "\n\n " + Begin + "\n"},
		{"nft replace", "table x\n" + Begin + "\nold\n" + End + "\nrest\n", true, NFT, "table x\n" + blk + "\nrest\n"},
		{"END before BEGIN ignored", End + "\n" + Begin + "\nold\n" + End + "\n", true, YAML, End + "\n" + blk + "\n"},
		{"first END after BEGIN", Begin + "\nold\n" + End + "\nkeep\n" + End + "\n", true, YAML, blk + "\nkeep\n" + End + "\n"},
		// §16 #38: marker-less files.
		{"no begin, starts with ---", "---\nmine: 1\n", true, YAML, "---\n" + blk + "\n\nmine: 1\n"},
		{"no begin, --- with trailing blanks", "--- \r\nmine: 1\r\n", true, YAML, "---\n" + blk + "\n\nmine: 1\r\n"},
		{"no begin, only ---", "---", true, YAML, "---\n" + blk + "\n\n"},
		{"no begin, other", "mine: 1\n", true, YAML, "---\n" + blk + "\n\nmine: 1\n"},
		{"no begin, --- later", "# c\n---\n", true, Preseed, "---\n" + blk + "\n\n# c\n---\n"},
		{"no begin, empty file", "", true, YAML, "---\n" + blk + "\n\n"},
		{"no begin, nft", "# mine\n", true, NFT, blk + "\n\n# mine\n"},
		// §16 #80: byte order mark and CRLF.
		{"bom before ---", bom + "---\nmine: 1\n", true, YAML, bom + "---\n" + blk + "\n\nmine: 1\n"},
		{"bom with block", bom + "---\n" + Begin + "\nold\n" + End + "\n", true, YAML, bom + "---\n" + blk + "\n"},
		{"crlf outside kept", "---\r\n# top\r\n" + Begin + "\r\n" + Notice + "\r\nold\r\n" + End + "\r\n\r\nmine: 1\r\n",
			true, YAML, "---\r\n# top\r\n" + blk + "\n\r\nmine: 1\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Splice("group_vars/d.yml", []byte(tt.old), tt.exists, []byte("a: 1\n\n"), tt.kind)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tt.want)
			}
			// Running sync twice produces byte-identical files.
			again, err := Splice("group_vars/d.yml", got, true, []byte("a: 1\n"), tt.kind)
			if err != nil || string(again) != string(got) {
				t.Errorf("second splice changed the file: %q, %v", again, err)
			}
			// §16 #37: exactly one BEGIN line and one END line in new files.
			if !tt.exists {
				if n, m := strings.Count(string(got), Begin+"\n"), strings.Count(string(got), End+"\n"); n != 1 || m != 1 {
					t.Errorf("%d BEGIN lines and %d END lines", n, m)
				}
			}
		})
	}
}

// TestSpliceErrors covers the two refusals of §6.3 (§16 items 39, 80).
func TestSpliceErrors(t *testing.T) {
	tests := []struct {
		name, old, want string
	}{
		{"two begins", Begin + "\n" + End + "\n" + Begin + "\n" + End + "\n", "host_vars/m.yml: more than one managed section"},
		{"two begins unclosed", "x\n" + Begin + "\n" + Begin + "\r\n", "host_vars/m.yml: more than one managed section"},
		{"unclosed", "---\n# c\n" + Begin + "  \nfoo\n", "host_vars/m.yml: managed section is not closed (BEGIN at line 3, no END after it)"},
		{"unclosed, END before", End + "\n" + Begin + "\n", "host_vars/m.yml: managed section is not closed (BEGIN at line 2, no END after it)"},
		{"unclosed after bom, crlf", bom + "---\r\n" + Begin + "\r\n", "host_vars/m.yml: managed section is not closed (BEGIN at line 2, no END after it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Splice("host_vars/m.yml", []byte(tt.old), true, []byte("a: 1\n"), YAML)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestHasBegin(t *testing.T) {
	for in, want := range map[string]bool{
		"":                     false,
		"x\n" + Begin + "\r\n": true,
		bom + Begin:            true,
		"# " + Begin:           false,
		"---\n" + End + "\n":   false,
	} {
		if got := HasBegin([]byte(in)); got != want {
			t.Errorf("HasBegin(%q) = %v", in, got)
		}
	}
}

// TestUserTextStaysOutside: the user's YAML below END can never continue
// the managed section's last value. An indented line, or a `- ` entry (which
// YAML accepts at its key's column), after the preseed's END would join the
// managed `profiles:` list; the splice refuses it with the line, and
// accepts comments, blank lines and keys at column 1.
func TestUserTextStaysOutside(t *testing.T) {
	managed := "profiles:\n- name: default\n"
	old := func(after string) string {
		return "---\n" + Begin + "\n" + Notice + "\n" + managed + End + "\n" + after
	}
	tests := []struct {
		name, after string
		kind        Kind
		wantErr     string
	}{
		{"indented entry", "\n  - name: evil\n", Preseed, "incus/preseed.yml:8:1: your text below the managed section would continue"},
		{"entry at column 1", "# mine\n- name: evil\n", Preseed, "incus/preseed.yml:8:1: your text below"},
		{"indented key", "    devices: {}\n", YAML, "incus/preseed.yml:7:1: your text below"},
		{"tab", "\tx: 1\n", YAML, "incus/preseed.yml:7:1: your text below"},
		{"keys at column 1", "\n# Your custom preseed keys below:\n  # an indented comment\nconfig:\n  core.https_address: ':8443'\n", Preseed, ""},
		{"nothing after", "", Preseed, ""},
		{"nft is not YAML", "  table x {}\n", NFT, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Splice("incus/preseed.yml", []byte(old(tt.after)), true, []byte(managed), tt.kind)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !strings.HasSuffix(string(got), End+"\n"+tt.after) {
					t.Errorf("user text not kept:\n%s", got)
				}
				return
			}
			var te *Error
			if !errors.As(err, &te) || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
