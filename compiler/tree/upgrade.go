package tree

import (
	"fmt"
	"io"
)

// FrameworkFiles returns the framework files of files (§6.2), in their order:
// the only class `anklume upgrade` writes.
func FrameworkFiles(files []File) []File {
	var out []File
	for _, f := range files {
		if f.Class == Framework {
			out = append(out, f)
		}
	}
	return out
}

// Upgrade writes the plan as `anklume upgrade` does (§12.8): every file
// whose bytes change is first copied to `<path>.bak`, replacing an older
// `.bak`, and reported as `upgraded: <path> (previous version saved as
// <path>.bak)`; a new file is reported as `created: <path>`. The summary
// line `upgrade: <a> created, <b> upgraded, <c> unchanged` ends the output
// when every write succeeded. A failed write is reported alone and the
// files are left as they were (see Plan.Apply).
func (p *Plan) Upgrade(w io.Writer) error {
	for i := range p.Changes {
		if p.Changes[i].Action == Update {
			p.Changes[i].Backup = true
		}
	}
	removed, err := p.write(nil)
	for _, r := range removed {
		fmt.Fprintf(w, "removed: %s (temporary file of an interrupted sync)\n", r)
	}
	if err != nil {
		return err
	}
	for _, c := range p.Changes {
		if c.Action == Unchanged {
			continue
		}
		if c.Action == Create {
			fmt.Fprintf(w, "created: %s\n", c.Path)
			continue
		}
		fmt.Fprintf(w, "upgraded: %s (previous version saved as %s.bak)\n", c.Path, c.Path)
	}
	created, updated, unchanged := p.Counts()
	fmt.Fprintf(w, "upgrade: %d created, %d upgraded, %d unchanged\n", created, updated, unchanged)
	return nil
}
