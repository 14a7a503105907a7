package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// plural returns one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// NoChanges is the line of a plan without changes (§9.4).
const NoChanges = "No changes. Incus matches the configuration."

// ANSI colours of the plan symbols (§13).
const (
	green   = "\x1b[32m"
	yellow  = "\x1b[33m"
	red     = "\x1b[31m"
	magenta = "\x1b[35m"
	reset   = "\x1b[0m"
)

// RenderOptions control the human rendering.
type RenderOptions struct {
	// Color colours the symbols; the caller decides (TTY, NO_COLOR, TERM,
	// --no-color: cmdutil.Factory.ColorEnabled).
	Color bool
}

// LineLess orders two lines of one plan: by domain index (0 for the lines
// that concern no domain), non-orphans before orphans, then by kind
// priority and name (§9.4).
func LineLess(da int, oa bool, ka Kind, na string, db int, ob bool, kb Kind, nb string) bool {
	if da != db {
		return da < db
	}
	if oa != ob {
		return !oa
	}
	if pa, pb := ka.Priority(), kb.Priority(); pa != pb {
		return pa < pb
	}
	return na < nb
}

// line is one rendered object line with its sort key.
type line struct {
	orphan bool
	kind   Kind
	name   string
	text   []string // first line, then diff lines
}

// colorize wraps the symbol sym.
func colorize(sym string, on bool) string {
	if !on {
		return sym
	}
	c := yellow
	switch sym {
	case "+":
		c = green
	case "-", "-/+":
		c = red
	case "!":
		c = magenta
	}
	return c + sym + reset
}

// diffLine renders one diff: `~ path: "a" -> "b"`, `+ path: "b"` or
// `- path: "a"`.
func diffLine(d Diff, color bool) string {
	switch {
	case d.Before != nil && d.After != nil:
		return colorize("~", color) + " " + d.Path + ": " + strconv.Quote(*d.Before) + " -> " + strconv.Quote(*d.After)
	case d.After != nil:
		return colorize("+", color) + " " + d.Path + ": " + strconv.Quote(*d.After)
	case d.Before != nil:
		return colorize("-", color) + " " + d.Path + ": " + strconv.Quote(*d.Before)
	}
	return colorize("~", color) + " " + d.Path
}

// changeLines renders a change and its diff lines.
func changeLines(c Change, color bool) []string {
	head := colorize(c.Action.Symbol(), color) + " " + string(c.Kind) + " " + c.Name
	if c.Reason != "" {
		head += " (" + c.Reason + ")"
	}
	out := []string{head}
	if c.Action == Create || c.Action == Delete || c.Action == Replace {
		return out
	}
	for _, d := range c.Diff {
		out = append(out, "    "+diffLine(d, color))
	}
	return out
}

// noteLine renders `! <kind> <name>: <text>`.
func noteLine(n Note, color bool) string {
	return colorize("!", color) + " " + string(n.Kind) + " " + n.Name + ": " + n.Text
}

// domainHeader renders `Domain work (project work, network net-work)`.
func domainHeader(d DomainInfo) string {
	var parts []string
	if d.Project != "" {
		parts = append(parts, "project "+d.Project)
	}
	if d.Network != "" {
		parts = append(parts, "network "+d.Network)
	}
	if d.Member != "" {
		parts = append(parts, "member "+d.Member)
	}
	if len(parts) == 0 {
		return "Domain " + d.Name
	}
	return "Domain " + d.Name + " (" + strings.Join(parts, ", ") + ")"
}

// Render writes the human plan of §9.4: the notes that concern no
// domain, then each domain with lines (declaration order, then orphan
// domains), then the summary line, or NoChanges.
func Render(w io.Writer, p *Plan, opts RenderOptions) error {
	bw := bufio.NewWriter(w)
	var sections [][]string
	var global []string
	for _, n := range p.Notes {
		if n.Domain == "" {
			global = append(global, noteLine(n, opts.Color))
		}
	}
	if len(global) > 0 {
		sections = append(sections, global)
	}
	for i, di := range p.Domains {
		var body []string
		for _, f := range p.Failed {
			if f.Domain == di.Name {
				body = append(body, "  "+colorize("!", opts.Color)+" domain "+f.Domain+": failed: "+f.Message)
			}
		}
		for _, u := range p.Unknown {
			if u.Domain == di.Name {
				body = append(body, "  "+colorize("!", opts.Color)+" domain "+u.Domain+": unknown: "+u.Message)
			}
		}
		var lines []line
		for _, c := range p.Changes {
			if c.Domain == di.Name {
				lines = append(lines, line{orphan: c.Orphan, kind: c.Kind, name: c.Name, text: changeLines(c, opts.Color)})
			}
		}
		for _, n := range p.Notes {
			if n.Domain == di.Name {
				lines = append(lines, line{orphan: n.Orphan, kind: n.Kind, name: n.Name, text: []string{noteLine(n, opts.Color)}})
			}
		}
		sortLines(lines, i+1)
		for _, l := range lines {
			for _, t := range l.text {
				body = append(body, "  "+t)
			}
		}
		if len(body) > 0 {
			sections = append(sections, append([]string{domainHeader(di)}, body...))
		}
	}
	for i, s := range sections {
		if i > 0 {
			bw.WriteString("\n")
		}
		for _, l := range s {
			bw.WriteString(l + "\n")
		}
	}
	if len(sections) > 0 {
		bw.WriteString("\n")
	}
	switch {
	case p.Empty() && len(p.Unknown) > 0:
		fmt.Fprintf(bw, "No changes for the domains that could be read; %d %s unknown (cluster member offline).\n",
			len(p.Unknown), plural(len(p.Unknown), "domain is", "domains are"))
	case p.Empty():
		bw.WriteString(NoChanges + "\n")
	default:
		s := p.Summary()
		fmt.Fprintf(bw, "Plan: %d to create, %d to update, %d to delete.\n", s.Create, s.Update, s.Delete)
		if n := len(p.Unknown); n > 0 {
			fmt.Fprintf(bw, "%d %s unknown (cluster member offline): nothing is planned for %s.\n",
				n, plural(n, "domain is", "domains are"), plural(n, "it", "them"))
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the plan: %w", err)
	}
	return nil
}

// sortLines orders the lines of one domain (stable insertion sort: plans
// are small and mostly sorted already).
func sortLines(ls []line, dom int) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && LineLess(dom, ls[j].orphan, ls[j].kind, ls[j].name, dom, ls[j-1].orphan, ls[j-1].kind, ls[j-1].name); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// jsonPlan is the --json document of §9.4.
type jsonPlan struct {
	FormatVersion int            `json:"format_version"`
	Changes       []Change       `json:"changes"`
	Notes         []Note         `json:"notes"`
	FailedDomains []FailedDomain `json:"failed_domains"`
	// UnknownDomains appears only on a cluster with an offline member.
	UnknownDomains []UnknownDomain `json:"unknown_domains,omitempty"`
	Summary        Summary         `json:"summary"`
}

// RenderJSON writes the plan as the one JSON document of §9.4, followed by
// a newline. Empty lists are written as [].
func RenderJSON(w io.Writer, p *Plan) error {
	doc := jsonPlan{FormatVersion: 1, Changes: []Change{}, Notes: []Note{}, FailedDomains: []FailedDomain{}, Summary: p.Summary()}
	for _, c := range p.Changes {
		if c.Diff == nil {
			c.Diff = []Diff{}
		}
		doc.Changes = append(doc.Changes, c)
	}
	doc.Notes = append(doc.Notes, p.Notes...)
	doc.FailedDomains = append(doc.FailedDomains, p.Failed...)
	doc.UnknownDomains = p.Unknown
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding the plan: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the plan: %w", err)
	}
	return nil
}
