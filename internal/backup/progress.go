package backup

import (
	"fmt"
	"io"
)

// Progress receives what a backup or a restore is doing, for a progress
// display: Step names the phase ("exporting", "importing", "starting"),
// Detail what is known of it (the bytes moved so far, a percent, or the
// Incus daemon's own words). Either may be nil.
type Progress struct {
	Step, Detail func(string)
}

func (p Progress) step(s string) {
	if p.Step != nil {
		p.Step(s)
	}
}

func (p Progress) detail(s string) {
	if p.Detail != nil {
		p.Detail(s)
	}
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// countWriter counts the bytes written through it and reports the total
// after each write.
type countWriter struct {
	w      io.Writer
	n      int64
	report func(n int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.report(c.n)
	return n, err
}

// countReader counts the bytes read through it and reports the total
// after each read.
type countReader struct {
	r      io.Reader
	n      int64
	report func(n int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.report(c.n)
	return n, err
}

// uploadText is the detail of a restore while the file is read: the
// percent of the file (its size on disk: an encrypted file is counted
// before decryption) and the MiB.
func uploadText(n, size int64) string {
	if size <= 0 {
		return "uploading " + mib(n)
	}
	return fmt.Sprintf("uploading %d%% (%s of %s)", n*100/size, mib(n), mib(size))
}
