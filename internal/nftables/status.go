package nftables

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/anklume/anklume/compiler/tree"
)

// State is the outcome of Status (§7.8).
type State int

const (
	// InSync: the live table equals the rendered one.
	InSync State = iota
	// Drift: the live table differs.
	Drift
	// NotLoaded: there is no table inet anklume on the host.
	NotLoaded
)

// String returns the status line of §7.8.
func (st State) String() string {
	switch st {
	case InSync:
		return "nftables: in sync"
	case Drift:
		return "nftables: drift"
	default:
		return "nftables: not loaded"
	}
}

// canonicalScript loads the file $2 with the nft binary $1 and lists the
// table, both inside the network namespace unshare created.
const canonicalScript = `"$1" -f "$2" && exec "$1" -s list table inet anklume`

// Status compares the live table inet anklume with ruleset, the rendered
// content of the managed block (§7.8). The ruleset is put into nft's
// canonical form by loading it into a private network namespace (`unshare
// -n`) and listing it there; the live table is listed with `nft -s list
// table inet anklume`, so both sides come out of the same printer. On
// Drift, diff is a unified diff from the live table (---) to the rendered
// one (+++): its + lines are what deploy would add.
func (s System) Status(ctx context.Context, ruleset []byte) (st State, diff []byte, err error) {
	nftBin, err := s.nftPath()
	if err != nil {
		return 0, nil, err
	}
	live, loaded, err := s.loadedTable(ctx, nftBin)
	if err != nil {
		return 0, nil, err
	}
	if !loaded {
		return NotLoaded, nil, nil
	}
	want, err := s.canonical(ctx, nftBin, ruleset)
	if err != nil {
		return 0, nil, err
	}
	got, wantN := normalize(live), normalize(want)
	if bytes.Equal(got, wantN) {
		return InSync, nil, nil
	}
	d := tree.UnifiedDiff(diffName, got, false, wantN)
	// Label the sides for what they are: the host's table and the PSOT's.
	d = bytes.Replace(d, []byte("--- a/"+diffName+"\n+++ b/"+diffName+"\n"), []byte(diffHeader), 1)
	return Drift, d, nil
}

// diffName is a placeholder path for tree.UnifiedDiff; diffHeader replaces
// its labels.
const (
	diffName   = "table"
	diffHeader = "--- live table inet anklume\n+++ rendered from the PSOT\n"
)

// canonical returns nft's listing of ruleset loaded in a throwaway network
// namespace.
func (s System) canonical(ctx context.Context, nftBin string, ruleset []byte) ([]byte, error) {
	p, cleanup, err := s.privateCopy(ruleset)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	out, errOut, err := s.Run(ctx, "unshare", "-n", "sh", "-c", canonicalScript, "sh", nftBin, p)
	if err != nil {
		return nil, fmt.Errorf("loading the rendered ruleset in a private network namespace: %s",
			strings.ReplaceAll(nftOutput(err, errOut), p, "rendered ruleset"))
	}
	return out, nil
}

// normalize drops trailing blanks of every line and trailing empty lines,
// the only differences two listings of one table may show.
func normalize(listing []byte) []byte {
	lines := strings.Split(string(listing), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return []byte(strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n")
}
