// Package progress shows the progress of long work (apply, and whatever
// runs many Incus operations).
//
// On a terminal the display is live: a block of one line per running task
// (its label, its current step, what the Incus daemon reports about it —
// an image download percent, an unpack — and the elapsed time) is redrawn
// in place a few times a second, and every finished task's line is printed
// above the block, where it stays. Anywhere else (a pipe, a file, CI,
// --quiet, --json, TERM=dumb) only the finished lines are printed, as
// plain text with no escape codes: a log stays readable and greppable.
//
// Choices where the issue was silent: NO_COLOR and --no-color remove the
// colour only (the live redraw is not colour, see no-color.org); TERM=dumb
// turns the redraw off, since such a terminal cannot move the cursor. The
// block shows at most MaxLive tasks and counts the others, and every line
// is cut to the terminal width so that a wrapped line never breaks the
// redraw. The library is our own (about 200 lines): the usual progress
// libraries draw bars for byte counts, not a set of concurrent named
// tasks whose percent comes from the daemon as text; golang.org/x/term
// decides what is a terminal and gives its width.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxLive is the most running tasks the live block shows; the rest are
// counted on one more line.
const MaxLive = 8

// DefaultInterval is how often the live block is redrawn.
const DefaultInterval = 150 * time.Millisecond

// Options configure a Display.
type Options struct {
	// Out receives the display.
	Out io.Writer
	// Live redraws the running tasks in place (a terminal). False prints
	// only the finished lines, plain.
	Live bool
	// Color colours the live block (the elapsed time dimmed).
	Color bool
	// Width returns the terminal width in columns (0 or nil: 80).
	Width func() int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Interval is the redraw period (DefaultInterval).
	Interval time.Duration
}

// Display shows running tasks and finished lines. It is safe for
// concurrent use. Close it when the work ends.
type Display struct {
	o Options

	mu     sync.Mutex
	tasks  []*task // running, in start order
	drawn  int     // lines of the live block now on screen
	frame  int
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

type task struct {
	id, label, step, detail string
	begin                   time.Time
}

// New returns a Display; a live one starts its redraw ticker.
func New(o Options) *Display {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	d := &Display{o: o}
	if o.Live {
		d.stop, d.done = make(chan struct{}), make(chan struct{})
		go d.tick()
	}
	return d
}

// Live reports whether the display redraws in place (a terminal).
func (d *Display) Live() bool { return d.o.Live }

// Plain returns a Display that prints only the finished lines on out.
func Plain(out io.Writer) *Display { return New(Options{Out: out}) }

func (d *Display) tick() {
	defer close(d.done)
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.mu.Lock()
			if len(d.tasks) > 0 {
				d.frame++
				d.redraw("")
			}
			d.mu.Unlock()
		}
	}
}

// Start begins the task id, shown as label. Starting a running task again
// does nothing.
func (d *Display) Start(id, label string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.find(id) != nil || d.closed {
		return
	}
	d.tasks = append(d.tasks, &task{id: id, label: label, begin: d.o.Now()})
	d.redraw("")
}

// Step sets what the task is doing now ("creating", "starting") and
// clears its detail.
func (d *Display) Step(id, step string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.find(id); t != nil && t.step != step {
		t.step, t.detail = step, ""
		d.redraw("")
	}
}

// Detail sets what the Incus daemon reports about the task's step (an
// image download percent). It shows at the next redraw.
func (d *Display) Detail(id, detail string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.find(id); t != nil {
		t.detail = detail
	}
}

// End removes the task from the live block and prints line (when not
// empty) where it stays, in both modes.
func (d *Display) End(id, line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, t := range d.tasks {
		if t.id == id {
			d.tasks = append(d.tasks[:i], d.tasks[i+1:]...)
			break
		}
	}
	d.print(line)
}

// Println prints a line that stays, above the live block.
func (d *Display) Println(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.print(line)
}

func (d *Display) print(line string) {
	if !d.o.Live {
		if line != "" {
			fmt.Fprintln(d.o.Out, line)
		}
		return
	}
	if line != "" {
		line += "\n"
	}
	d.redraw(line)
}

// Close stops the redraws and clears the live block. Tasks still running
// are dropped without a line.
func (d *Display) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.tasks = nil
	if d.o.Live {
		d.redraw("")
	}
	d.mu.Unlock()
	if d.stop != nil {
		close(d.stop)
		<-d.done
	}
}

// Wrap returns a writer to w (the error stream, often the same
// terminal) that clears the live block before each write and draws it
// again after, so a warning never lands inside the block. Off a terminal
// it is w itself.
func (d *Display) Wrap(w io.Writer) io.Writer {
	if !d.o.Live {
		return w
	}
	return wrapped{d: d, w: w}
}

type wrapped struct {
	d *Display
	w io.Writer
}

func (x wrapped) Write(p []byte) (int, error) {
	d := x.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drawn > 0 {
		_, _ = fmt.Fprintf(d.o.Out, "\r"+cursorUp+clearDown, d.drawn)
		d.drawn = 0
	}
	n, err := x.w.Write(p)
	if !d.closed {
		d.redraw("")
	}
	return n, err
}

func (d *Display) find(id string) *task {
	for _, t := range d.tasks {
		if t.id == id {
			return t
		}
	}
	return nil
}

// Escape sequences of the live block (ECMA-48, understood by every
// terminal emulator in use).
const (
	cursorUp  = "\x1b[%dA"
	clearDown = "\x1b[J"
	dim       = "\x1b[2m"
	reset     = "\x1b[0m"
)

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// redraw moves to the top of the live block, clears it, prints above the
// permanent text and draws the block again, in one write. A plain
// display draws nothing. d.mu is held.
func (d *Display) redraw(above string) {
	if !d.o.Live {
		return
	}
	var b strings.Builder
	b.WriteString("\r")
	if d.drawn > 0 {
		fmt.Fprintf(&b, cursorUp, d.drawn)
	}
	b.WriteString(clearDown)
	b.WriteString(above)
	lines := d.block()
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
	d.drawn = len(lines)
	_, _ = io.WriteString(d.o.Out, b.String())
}

// block renders the running tasks, each cut to the terminal width.
func (d *Display) block() []string {
	width := 80
	if d.o.Width != nil {
		if w := d.o.Width(); w > 0 {
			width = w
		}
	}
	now := d.o.Now()
	var out []string
	for i, t := range d.tasks {
		if i == MaxLive {
			out = append(out, fit(fmt.Sprintf("  … and %d more", len(d.tasks)-MaxLive), width))
			break
		}
		text := t.label
		if t.step != "" {
			text += ": " + t.step
		}
		if t.detail != "" {
			text += " (" + t.detail + ")"
		}
		el := Elapsed(now.Sub(t.begin))
		sp := spinner[(d.frame+i)%len(spinner)]
		// Cut the text, never the elapsed time.
		text = fit(sp+" "+text, width-len(el)-2)
		if d.o.Color {
			el = dim + el + reset
		}
		out = append(out, text+"  "+el)
	}
	return out
}

// fit cuts s to at most n runes, ending with "…" when cut.
func fit(s string, n int) string {
	if n < 1 {
		n = 1
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Elapsed formats a duration as users read it: 4s, 1m05s, 1h02m.
func Elapsed(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
}
