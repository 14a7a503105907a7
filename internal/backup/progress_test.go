package backup

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// recorder keeps the steps and details a Progress hears.
type recorder struct {
	mu             sync.Mutex
	steps, details []string
}

func (r *recorder) progress() Progress {
	return Progress{
		Step: func(s string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if n := len(r.steps); n == 0 || r.steps[n-1] != s {
				r.steps = append(r.steps, s)
			}
		},
		Detail: func(s string) { r.mu.Lock(); defer r.mu.Unlock(); r.details = append(r.details, s) },
	}
}

// TestProgress: a backup reports "exporting" with the daemon's own words,
// then "downloading" with the MiB received, ending at the file's size; a
// restore reports "uploading" with a percent of the file that only grows,
// then "importing" and "starting".
func TestProgress(t *testing.T) {
	ctx := context.Background()
	f := fake(t)
	// 3 MiB that gzip cannot shrink: the file is read in many pieces.
	big := make([]byte, 3<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteInstanceFile(ctx, "default", "m1", "/data", big, 0o600); err != nil {
		t.Fatal(err)
	}
	f.SetProgress("ExportInstance", "default/m1", time.Millisecond, "Backing up instance: 50%")
	var c recorder
	path, err := Create(ctx, f, CreateOptions{Project: "default", Instance: "m1", Machine: "m1",
		Dir: filepath.Join(t.TempDir(), "b"), Now: time.Now(), Progress: c.progress()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.steps) != 2 || c.steps[0] != "exporting" || c.steps[1] != "downloading" {
		t.Errorf("backup steps %q", c.steps)
	}
	if len(c.details) < 2 || c.details[0] != "Backing up instance: 50%" || c.details[len(c.details)-1] != mib(st.Size()) {
		t.Errorf("backup details %q (file of %s)", c.details, mib(st.Size()))
	}

	var r recorder
	if err := Restore(ctx, f, RestoreOptions{Path: path, Project: "default", Instance: "r", Progress: r.progress()}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"uploading", "importing", "starting"}; len(r.steps) != 3 || r.steps[0] != want[0] || r.steps[1] != want[1] || r.steps[2] != want[2] {
		t.Errorf("restore steps %q, want %q", r.steps, want)
	}
	re := regexp.MustCompile(`^uploading (\d+)% \(\d+\.\d MiB of ` + regexp.QuoteMeta(mib(st.Size())) + `\)$`)
	last, between := -1, 0
	for _, d := range r.details {
		m := re.FindStringSubmatch(d)
		if m == nil {
			continue
		}
		p, _ := strconv.Atoi(m[1])
		if p < last || p >= 100 {
			t.Errorf("percent %d after %d", p, last)
		}
		if p > 0 {
			between++
		}
		last = p
	}
	if between == 0 {
		t.Errorf("no upload percent between 0 and 100 in %q", r.details)
	}
}
