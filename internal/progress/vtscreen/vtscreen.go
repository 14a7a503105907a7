// Package vtscreen replays terminal output on a screen of lines, as a
// terminal emulator would, for tests of what users see after redraws. It
// knows what package progress writes: printable text, \r, \n, \b, and the
// CSI sequences cursor up (A), erase below (J), erase line (K) and the
// graphic renditions (m, ignored). Any other escape is an error, so a test
// also proves the output uses nothing a plain terminal lacks.
package vtscreen

import (
	"fmt"
	"strconv"
	"strings"
)

// Screen is the text left on a terminal with no scroll limit.
type Screen struct {
	lines    [][]rune
	row, col int
}

// Replay returns the screen after out is written to a fresh terminal.
func Replay(out string) (*Screen, error) {
	s := &Screen{lines: [][]rune{nil}}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			s.col = 0
		case '\n':
			s.row++
			if s.row == len(s.lines) {
				s.lines = append(s.lines, nil)
			}
			s.col = 0 // the pty's onlcr or our own \r: both land at column 0
		case '\b':
			if s.col > 0 {
				s.col--
			}
		case 0x1b:
			if i+1 >= len(rs) || rs[i+1] != '[' {
				return nil, fmt.Errorf("offset %d: escape not CSI", i)
			}
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';') {
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("offset %d: unterminated CSI", i)
			}
			arg := string(rs[i+2 : j])
			n := 1
			if a, err := strconv.Atoi(arg); err == nil && a > 0 {
				n = a
			}
			switch rs[j] {
			case 'A':
				s.row = max(0, s.row-n)
			case 'J':
				s.lines[s.row] = cut(s.lines[s.row], s.col)
				s.lines = s.lines[:s.row+1]
			case 'K':
				s.lines[s.row] = cut(s.lines[s.row], s.col)
			case 'm':
			default:
				return nil, fmt.Errorf("offset %d: CSI %q%c not understood", i, arg, rs[j])
			}
			i = j
		default:
			l := s.lines[s.row]
			for len(l) < s.col {
				l = append(l, ' ')
			}
			if s.col < len(l) {
				l[s.col] = r
			} else {
				l = append(l, r)
			}
			s.lines[s.row] = l
			s.col++
		}
	}
	return s, nil
}

func cut(l []rune, n int) []rune {
	if n < len(l) {
		return l[:n]
	}
	return l
}

// Lines returns the screen's lines, right-trimmed, without the empty
// lines at the end.
func (s *Screen) Lines() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}
