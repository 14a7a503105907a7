package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/trust"
)

// Graph is the policy graph, laid out on the server and drawn as SVG:
// the host (when a policy names it) as a circle at the top, each enabled
// domain as a box in its trust colour with one row per machine, and each
// policy as an arrow from its from side to its to side (arrows at both
// ends when bidirectional), from the box's header for a domain and from
// the machine's row for a machine.
type Graph struct {
	Width, Height int
	Host          *HostNode
	Boxes         []Box
	Edges         []Edge
}

// HostNode is the host's circle.
type HostNode struct{ X, Y, R int }

// Box is one domain.
type Box struct {
	Domain  string
	Level   string
	Palette trust.Palette
	X, Y    int
	W, H    int
	Rows    []Row
}

// Row is one machine of a Box.
type Row struct {
	Machine string
	X, Y    int
	W, H    int
}

// Edge is one policy.
type Edge struct {
	// ID is "policy-<index>".
	ID       string
	From, To string
	// Label is "tcp 22, 80" or "all".
	Label, Title  string
	Path          string
	LX, LY        int
	Bidirectional bool
	Auto          bool
}

// Layout geometry.
const (
	boxW    = 220
	headerH = 30
	rowH    = 24
	gutterX = 170
	gutterY = 60
	margin  = 40
	hostR   = 26
	maxCols = 3
)

// anchor is a point where an edge meets a node, and the side it leaves
// from (-1 left, +1 right, 0 the host circle).
type anchor struct {
	x, y, side int
	cx         int // the node's centre x, to pick a side
}

// Layout lays out the policy graph of m.
func Layout(m *model.Infra) Graph {
	var g Graph
	hasHost := false
	for _, p := range m.Policies {
		if p.From.Kind == model.HostEndpoint || p.To.Kind == model.HostEndpoint {
			hasHost = true
		}
	}
	domains := enabledDomains(m)
	cols := min(max(len(domains), 1), maxCols)
	top := margin
	if hasHost {
		top += 2*hostR + gutterY
	}
	y := top
	for i := 0; i < len(domains); i += cols {
		rowHeight := 0
		for c := 0; c < cols && i+c < len(domains); c++ {
			d := domains[i+c]
			b := Box{Domain: d.Name, Level: trust.Level(d), Palette: trust.ForDomain(d),
				X: margin + c*(boxW+gutterX), Y: y, W: boxW, H: headerH + rowH*len(d.Machines) + 6}
			for j, mc := range d.Machines {
				b.Rows = append(b.Rows, Row{Machine: mc.Name, X: b.X + 6, Y: b.Y + headerH + j*rowH, W: boxW - 12, H: rowH - 4})
			}
			rowHeight = max(rowHeight, b.H)
			g.Boxes = append(g.Boxes, b)
		}
		y += rowHeight + gutterY
	}
	g.Width = 2*margin + cols*boxW + (cols-1)*gutterX
	g.Height = max(y-gutterY+margin, top+margin)
	if hasHost {
		g.Host = &HostNode{X: g.Width / 2, Y: margin + hostR, R: hostR}
	}
	find := func(e model.Endpoint) (anchor, bool) {
		switch e.Kind {
		case model.HostEndpoint:
			if g.Host == nil {
				return anchor{}, false
			}
			return anchor{x: g.Host.X, y: g.Host.Y, cx: g.Host.X}, true
		case model.DomainEndpoint:
			for _, b := range g.Boxes {
				if b.Domain == e.Name {
					return anchor{x: b.X, y: b.Y + headerH/2, side: -1, cx: b.X + b.W/2}, true
				}
			}
		case model.MachineEndpoint:
			for _, b := range g.Boxes {
				for _, r := range b.Rows {
					if r.Machine == e.Name {
						return anchor{x: r.X, y: r.Y + r.H/2, side: -1, cx: b.X + b.W/2}, true
					}
				}
			}
		}
		return anchor{}, false
	}
	for _, p := range m.Policies {
		a, ok1 := find(p.From)
		b, ok2 := find(p.To)
		if !ok1 || !ok2 {
			continue // an end in a disabled domain
		}
		e := Edge{ID: "policy-" + strconv.Itoa(p.Index), From: p.From.Name, To: p.To.Name,
			Label: portLabel(p), Bidirectional: p.Bidirectional, Auto: p.Auto}
		e.Title = fmt.Sprintf("%s → %s: %s", p.From.Name, p.To.Name, e.Label)
		if p.Description != "" {
			e.Title += " (" + p.Description + ")"
		}
		e.Path, e.LX, e.LY = curve(a, b)
		// Move a label down while it would cover an earlier one.
		for moved := true; moved; {
			moved = false
			for _, o := range g.Edges {
				if abs(o.LX-e.LX) < 90 && abs(o.LY-e.LY) < 13 {
					e.LY = o.LY + 13
					moved = true
				}
			}
		}
		g.Edges = append(g.Edges, e)
	}
	return g
}

// enabledDomains returns the enabled domains in address order (zone, then
// seq), the order of the console's windows.
func enabledDomains(m *model.Infra) []*model.Domain {
	var out []*model.Domain
	for _, d := range m.Domains {
		if d.Enabled {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b *model.Domain) int {
		return cmp.Or(a.Subnet.Addr().Compare(b.Subnet.Addr()), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// portLabel is "all" or "tcp 22, 80".
func portLabel(p *model.Policy) string {
	if p.AllPorts {
		return "all"
	}
	var ps []string
	for _, x := range p.UniquePorts() {
		ps = append(ps, strconv.Itoa(x))
	}
	return p.Protocol + " " + strings.Join(ps, ", ")
}

// curve returns a cubic Bézier path between two anchors, each leaving its
// node on the side facing the other node, and the label position.
func curve(a, b anchor) (string, int, int) {
	place := func(p *anchor, other anchor) {
		if p.side == 0 {
			return // host circle: the centre, the arrow stops at its edge
		}
		if other.cx > p.cx {
			p.x = p.cx + boxW/2 // right edge of the box
			p.side = 1
		} else {
			p.x = p.cx - boxW/2
			p.side = -1
		}
	}
	place(&a, b)
	place(&b, a)
	if a.cx == b.cx && a.side != 0 && b.side != 0 {
		a.x, a.side = a.cx+boxW/2, 1 // same column: loop on the right
		b.x, b.side = b.cx+boxW/2, 1
	}
	const pull = 80
	c1x, c1y := a.x+a.side*pull, a.y
	c2x, c2y := b.x+b.side*pull, b.y
	if a.side == 0 {
		a.y += hostR
		c1y = a.y + pull
	}
	if b.side == 0 {
		b.y += hostR
		c2y = b.y + pull
	}
	path := fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", a.x, a.y, c1x, c1y, c2x, c2y, b.x, b.y)
	// Midpoint of the cubic at t = 0.5.
	lx := (a.x + 3*c1x + 3*c2x + b.x) / 8
	ly := (a.y + 3*c1y + 3*c2y + b.y) / 8
	return path, lx, ly
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
