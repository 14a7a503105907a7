package dashboard

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/internal/plural"
	"github.com/anklume/anklume/internal/trust"
	"github.com/anklume/anklume/internal/verify"
)

// The reachability matrix of the page: one row per enabled domain (the
// source), one column per enabled domain, then "host" and "outside" (the
// target). A cell sums up every machine pair of that row and column of
// the expected matrix (compiler/reach):
//
//   - its verdict: "allow" when every pair lets everything through,
//     "deny" when none lets anything through, "partial" otherwise (some
//     protocols or ports, or only some of the machines), with the traffic
//     that passes as its label;
//   - its proof, from the last `anklume verify` on this host (the record
//     it keeps in the state directory): "proven" when live probes of that
//     cell all agreed with the matrix, "mismatch" when at least one did
//     not (the live system contradicts infra.yml there), "computed" when
//     no probe covered it (the cell comes from infra.yml alone).
//
// The proof is as old as the last verify, whose time the page shows; the
// page does not run verify (it needs root and sends traffic) and reads the
// record when it is loaded, not on every status poll.

// Verdicts and proofs of a cell.
const (
	CellAllow     = "allow"
	CellDeny      = "deny"
	CellPartial   = "partial"
	CellNone      = "none" // no pair: a domain of one machine with itself
	ProofProven   = "proven"
	ProofMismatch = "mismatch"
	ProofComputed = "computed"
)

// ReachView is the matrix as the page draws it.
type ReachView struct {
	Rows []ReachRow
	// Cols are the target columns: domains, then host and outside.
	Cols []ReachCol
	// Verify sums up the last live verify ("" when none is recorded).
	Verify string
	// VerifyOK is false when the last verify found mismatches.
	VerifyOK bool
}

// ReachCol is one target column.
type ReachCol struct {
	Name  string
	Level string // trust level; "" for host and outside
}

// ReachRow is one source domain.
type ReachRow struct {
	Domain string
	Level  string
	Cells  []ReachCell
}

// ReachCell is one source domain × target.
type ReachCell struct {
	From, To string
	Verdict  string
	Label    string
	Proof    string
	// ProofText says how many probes proved or contradicted the cell.
	ProofText string
	// Title lists the reasons, for the cell's tooltip.
	Title string
}

// Matrix builds the page's matrix of m from the expected matrix and the
// last verify document (nil when none).
func Matrix(m *model.Infra, doc *verify.Document) ReachView {
	mx := reach.Compute(m)
	domainOf := map[string]string{}
	for _, x := range mx.Machines {
		domainOf[x.Name] = x.Domain
	}
	type key struct{ from, to string }
	pairs := map[key][]reach.Pair{}
	for _, p := range mx.Pairs {
		to := p.Kind
		if p.Kind == reach.ToMachine {
			to = domainOf[p.To]
		}
		k := key{domainOf[p.From], to}
		pairs[k] = append(pairs[k], p)
	}
	type tally struct{ probes, bad int }
	probed := map[key]*tally{}
	v := ReachView{}
	if doc != nil {
		v.VerifyOK = doc.OK
		v.Verify = fmt.Sprintf("last verify on this host at %s: %s, %s",
			doc.Time.UTC().Format("2006-01-02 15:04:05 UTC"), plural.N(doc.Probes, "probe"), plural.N(doc.Mismatches, "mismatch", "mismatches"))
		for _, r := range doc.Results {
			if r.Outcome == "not run" {
				continue
			}
			k := key{r.FromDomain, r.ToDomain}
			if probed[k] == nil {
				probed[k] = &tally{}
			}
			probed[k].probes++
			if r.Mismatch {
				probed[k].bad++
			}
		}
	}
	doms := enabledDomains(m)
	for _, d := range doms {
		v.Cols = append(v.Cols, ReachCol{Name: d.Name, Level: trust.Level(d)})
	}
	v.Cols = append(v.Cols, ReachCol{Name: reach.ToHost}, ReachCol{Name: reach.ToOutside})
	for _, d := range doms {
		row := ReachRow{Domain: d.Name, Level: trust.Level(d)}
		for _, c := range v.Cols {
			k := key{d.Name, c.Name}
			cell := summarize(pairs[k])
			cell.From, cell.To = d.Name, c.Name
			cell.Proof, cell.ProofText = ProofComputed, "computed (not probed)"
			if t := probed[k]; t != nil {
				if t.bad > 0 {
					cell.Proof, cell.ProofText = ProofMismatch, fmt.Sprintf("live probes disagree: %d of %d", t.bad, t.probes)
				} else {
					cell.Proof, cell.ProofText = ProofProven, "proven: "+plural.N(t.probes, "live probe")
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// summarize returns the verdict, label and reasons of the pairs of one
// cell.
func summarize(ps []reach.Pair) ReachCell {
	if len(ps) == 0 {
		return ReachCell{Verdict: CellNone, Label: "-", Title: "no pair of machines"}
	}
	var sets [][]string
	var reasons []string
	all, none := true, true
	for _, p := range ps {
		a := p.Allowed()
		all = all && a == "all"
		none = none && a == "none"
		sets = append(sets, tokens(a))
		for _, w := range strings.Split(p.Why(), "; ") {
			if w = strings.TrimPrefix(w, "rest: "); !slices.Contains(reasons, w) {
				reasons = append(reasons, w)
			}
		}
	}
	c := ReachCell{Title: strings.Join(reasons, "\n")}
	switch {
	case all:
		c.Verdict, c.Label = CellAllow, "all"
	case none:
		c.Verdict, c.Label = CellDeny, "none"
	default:
		// What every pair lets through, then what only some do.
		c.Verdict = CellPartial
		var common, some []string
		for _, t := range sets[0] {
			if !slices.ContainsFunc(sets, func(s []string) bool { return !slices.Contains(s, t) }) {
				common = append(common, t)
			}
		}
		for _, s := range sets {
			for _, t := range s {
				if !slices.Contains(common, t) && !slices.Contains(some, t) {
					some = append(some, t)
				}
			}
		}
		c.Label = strings.Join(common, " ")
		if len(some) > 0 {
			if c.Label != "" {
				c.Label += " + "
			}
			c.Label += "some machines: " + strings.Join(some, " ")
		}
	}
	return c
}

// tokens splits what a pair lets through (reach.Pair.Allowed) into its
// parts: "tcp/22 icmp" gives tcp/22 and icmp; "none" gives nothing; "all"
// and "all except …" stay whole.
func tokens(allowed string) []string {
	switch {
	case allowed == "none":
		return nil
	case strings.HasPrefix(allowed, "all"):
		return []string{allowed}
	}
	return strings.Fields(allowed)
}
