package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/anklume/anklume/compiler/reach"
)

// DocumentVersion is the format_version of Document.
const DocumentVersion = 1

// Document is one live verify as JSON: what `anklume verify --json` prints
// on stdout and what verify records in <state dir>/verify/<infra>.json
// (status reads its summary fields, the dashboard its results). The shape
// is stable within a format_version: fields may be added, none is renamed,
// removed or changes meaning.
//
//	{
//	  "format_version": 1,
//	  "infra": "lab",                  // project_name of the PSOT
//	  "time": "2026-12-05T19:00:00Z",  // when the run ended (UTC, seconds)
//	  "ok": true,                      // no failed check and no mismatch
//	  "probes": 49,                    // probes that ran (not_run excluded)
//	  "mismatches": 0,                 // failed checks + mismatched probes
//	  "pairs": 19,                     // sampled pairs
//	  "not_run": 0,                    // probes the time budget cut off
//	  "duration_seconds": 3.31,
//	  "checks": [{"name": "...", "ok": true, "detail": "..."}],
//	  "results": [{
//	    "from": "lab-1", "from_domain": "lab",
//	    "to": "web-1",                 // a machine, "host" or "outside"
//	    "to_domain": "web",            // "host" or "outside" for those kinds
//	    "kind": "machine",             // machine, host or outside
//	    "to_ip": "10.120.0.1",         // "" for outside
//	    "proto": "tcp", "port": 8080,  // tcp, udp or icmp (port 0)
//	    "expected": {"verdict": "allow", "reason": {"kind": "policy", "text": "...", "policy": 1, "at": "infra.yml:23:5"}},
//	    "outcome": "accepted",         // accepted, refused, timeout, unreachable, failed, not run
//	    "detail": "...",               // omitted when empty
//	    "mismatch": false
//	  }],
//	  "not_probed": [{"machine": "vm-1", "reason": "a VM: its network namespace is in its own kernel"}]
//	}
//
// checks, results and not_probed are always arrays (never null).
type Document struct {
	FormatVersion   int          `json:"format_version"`
	Infra           string       `json:"infra"`
	Time            time.Time    `json:"time"`
	OK              bool         `json:"ok"`
	Probes          int          `json:"probes"`
	Mismatches      int          `json:"mismatches"`
	Pairs           int          `json:"pairs"`
	NotRun          int          `json:"not_run"`
	DurationSeconds float64      `json:"duration_seconds"`
	Checks          []Check      `json:"checks"`
	Results         []ResultJSON `json:"results"`
	NotProbed       []NotProbed  `json:"not_probed"`
}

// ResultJSON is one probe of Document.
type ResultJSON struct {
	From       string         `json:"from"`
	FromDomain string         `json:"from_domain"`
	To         string         `json:"to"`
	ToDomain   string         `json:"to_domain"`
	Kind       string         `json:"kind"`
	ToIP       string         `json:"to_ip"`
	Proto      string         `json:"proto"`
	Port       int            `json:"port"`
	Expected   reach.Decision `json:"expected"`
	Outcome    string         `json:"outcome"`
	Detail     string         `json:"detail,omitempty"`
	Mismatch   bool           `json:"mismatch"`
}

// Document returns the report as the JSON document of infra, ended at at.
func (r *Report) Document(infra string, at time.Time) Document {
	n := r.Mismatches()
	d := Document{
		FormatVersion: DocumentVersion, Infra: infra, Time: at.UTC().Truncate(time.Second),
		OK: n == 0, Probes: len(r.Results) - r.NotRun, Mismatches: n, Pairs: r.Pairs, NotRun: r.NotRun,
		DurationSeconds: math.Round(r.Duration.Seconds()*100) / 100,
		Checks:          append([]Check{}, r.Checks...), Results: []ResultJSON{}, NotProbed: append([]NotProbed{}, r.NotProbed...),
	}
	for _, x := range r.Results {
		p := x.Probe
		toDomain := p.ToDomain
		if p.Pair.Kind != reach.ToMachine {
			toDomain = p.Pair.Kind
		}
		d.Results = append(d.Results, ResultJSON{
			From: p.Pair.From, FromDomain: p.FromDomain, To: p.Pair.To, ToDomain: toDomain, Kind: p.Pair.Kind,
			ToIP: p.Pair.ToIP, Proto: p.Proto, Port: p.Port, Expected: p.Expect,
			Outcome: x.Outcome, Detail: x.Detail, Mismatch: x.Mismatch,
		})
	}
	return d
}

// Record returns the summary of d that status shows.
func (d Document) Record() Record {
	return Record{Infra: d.Infra, Time: d.Time, OK: d.OK, Probes: d.Probes, Mismatches: d.Mismatches}
}

// WriteJSON prints d as one indented JSON document.
func (d Document) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the verify report: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("printing the verify report: %w", err)
	}
	return nil
}
