package reach

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Spec returns a rule's traffic as "tcp/22,80", "udp", "icmp" or "all".
func (r Rule) Spec() string {
	if r.Proto == All || r.Proto == ICMP || len(r.Ports) == 0 {
		return r.Proto
	}
	ps := make([]string, len(r.Ports))
	for i, p := range r.Ports {
		ps[i] = strconv.Itoa(p)
	}
	return r.Proto + "/" + strings.Join(ps, ",")
}

// Allowed summarises what passes: "all", "none", "tcp/22 icmp" or
// "all except udp/53 tcp/53".
func (p Pair) Allowed() string {
	var allow, deny []string
	for _, r := range p.Rules {
		if r.Verdict == Allow {
			allow = append(allow, r.Spec())
		} else {
			deny = append(deny, r.Spec())
		}
	}
	if p.Default.Verdict == Allow {
		if len(deny) > 0 {
			return "all except " + strings.Join(deny, " ")
		}
		return "all"
	}
	if len(allow) == 0 {
		return "none"
	}
	return strings.Join(allow, " ")
}

// Why lists the reasons of a pair, the default last.
func (p Pair) Why() string {
	var parts []string
	denied := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range p.Rules {
		if r.Verdict == Deny {
			denied[r.Reason.Text] = append(denied[r.Reason.Text], r.Spec())
		}
	}
	for _, r := range p.Rules {
		t := r.Reason.Text
		if seen[t] {
			continue
		}
		seen[t] = true
		if r.Verdict == Deny {
			t = "not " + strings.Join(denied[t], " ") + ": " + t
		}
		parts = append(parts, t)
	}
	d := p.Default.Reason.Text
	if len(p.Rules) > 0 {
		d = "rest: " + d
	}
	return strings.Join(append(parts, d), "; ")
}

// WriteTable prints the matrix as a table, one line per pair.
func (mx *Matrix) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tALLOWED\tWHY")
	for _, p := range mx.Pairs {
		to := p.To
		if p.ToIP != "" {
			to += " (" + p.ToIP + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.From, to, p.Allowed(), p.Why())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("printing the matrix: %w", err)
	}
	return nil
}

// WriteJSON prints the matrix as one indented JSON document.
func (mx *Matrix) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(mx, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the matrix: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("printing the matrix: %w", err)
	}
	return nil
}
