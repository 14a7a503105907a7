package nftables

import (
	"errors"
	"testing"
)

const (
	begin  = "# === MANAGED BY infra.yml ===\n# Do not edit this section — it will be overwritten by `anklume sync`\n"
	end    = "# === END MANAGED ==="
	ours   = "table inet anklume\ndelete table inet anklume\ntable inet anklume {\n\tcomment \"anklume infra=demo\"\n\tchain isolation {\n\t\ttype filter hook forward priority -1; policy accept;\n\t\tct state invalid drop\n\t}\n}\n"
	block  = begin + ours + end
	path   = "nftables/anklume-isolation.nft"
	header = "# my notes\n\n   # indented comment\n"
)

// TestGuard is §16 #51: flush ruleset anywhere, any statement outside the
// block, and any table other than inet anklume inside it are refused with
// the line and reason of §7.7; comments outside the block are accepted.
func TestGuard(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		line   int
		reason string // "" accepts
	}{
		{name: "block alone", text: block + "\n"},
		{name: "comments and blank lines around", text: header + block + "\n\n# after\n"},
		{name: "CRLF and BOM", text: "\xef\xbb\xbf# c\r\n" + block + "\r\n"},
		{name: "quoted text is not read", text: begin + "table inet anklume {\n\tcomment \"anklume infra=x; flush ruleset; table ip y\"\n}\n" + end + "\n"},
		{name: "add rule on own table inside", text: begin + "add rule inet anklume isolation drop\n" + end},
		{name: "flush ruleset outside", text: "flush ruleset\n" + block, line: 1, reason: ReasonFlush},
		{name: "flush ruleset inside", text: begin + "flush ruleset\n" + ours + end, line: 3, reason: ReasonFlush},
		{name: "flush ruleset after a statement", text: begin + ours + "list tables; flush   ruleset\n" + end, line: 12, reason: ReasonFlush},
		{name: "table inet anklume outside", text: block + "\ntable inet anklume { }\n", line: 13, reason: ReasonOutside},
		{name: "table inet filter outside", text: header + "table inet filter {\n}\n" + block, line: 4, reason: ReasonOutside},
		{name: "add rule outside", text: block + "\nadd rule inet anklume isolation accept\n", line: 13, reason: ReasonOutside},
		{name: "include outside", text: "include \"/etc/x.nft\"\n" + block, line: 1, reason: ReasonOutside},
		{name: "comment after code outside", text: "x # y\n" + block, line: 1, reason: ReasonOutside},
		{name: "other table inside", text: begin + ours + "table inet filter {\n}\n" + end, line: 12, reason: ReasonOtherTables},
		{name: "default family ip inside", text: begin + "table anklume {\n}\n" + end, line: 3, reason: ReasonOtherTables},
		{name: "delete other table inside", text: begin + "delete table ip nat\n" + ours + end, line: 3, reason: ReasonOtherTables},
		{name: "add rule on another table inside", text: begin + "add rule ip filter INPUT accept\n" + end, line: 3, reason: ReasonOtherTables},
		{name: "include inside", text: begin + "include \"/tmp/x\"\n" + end, line: 3, reason: ReasonOtherTables},
		{name: "second statement on one line", text: begin + "table inet anklume; table ip6 x\n" + end, line: 3, reason: ReasonOtherTables},
		{name: "after the table closes", text: begin + "table inet anklume { chain c { } } table arp z { }\n" + end, line: 3, reason: ReasonOtherTables},
		{name: "unclosed block then statement", text: begin + ours + "ct helper ip other h { }\n", line: 12, reason: ReasonOtherTables},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Guard(path, []byte(tt.text))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ge *GuardError
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v, want a GuardError", err)
			}
			if ge.Line != tt.line || ge.Reason != tt.reason {
				t.Errorf("got line %d %q, want line %d %q", ge.Line, ge.Reason, tt.line, tt.reason)
			}
		})
	}
}

// TestGuardMessage checks the message of §7.7 byte for byte.
func TestGuardMessage(t *testing.T) {
	err := Guard(path, []byte("flush ruleset\n"))
	want := "nftables/anklume-isolation.nft:1: refusing to deploy: flush ruleset is not allowed"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// FuzzGuard: the guard never panics, and no accepted file stays accepted
// once a flush ruleset line is added after it.
func FuzzGuard(f *testing.F) {
	f.Add(block)
	f.Add("flush ruleset")
	f.Add(begin + "table \"x")
	f.Fuzz(func(t *testing.T, s string) {
		if Guard(path, []byte(s)) != nil {
			return
		}
		if Guard(path, []byte(s+"\nflush ruleset\n")) == nil {
			t.Fatalf("accepted %q followed by flush ruleset", s)
		}
	})
}
