package incusx

import (
	"context"
	"sort"
	"strings"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// ProgressFunc receives what the Incus daemon reports about a running
// operation, as it words it: "rootfs: 45% (12.30MB/s)" for an image
// download, "Unpacking image: 80%" for an unpack.
type ProgressFunc func(text string)

type progressKey struct{}

// WithProgress returns a context whose Incus operations report their
// progress to f (the `*_progress` keys of the operation metadata, which
// is what the incus client shows).
func WithProgress(ctx context.Context, f ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// progressOf returns the ProgressFunc of ctx, or nil.
func progressOf(ctx context.Context) ProgressFunc {
	f, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return f
}

// ProgressText picks the progress text of an operation's metadata: the
// first `*_progress` key in name order, or "".
func ProgressText(meta map[string]any) string {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		if strings.HasSuffix(k, "_progress") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s, ok := meta[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// watch forwards op's progress to the ProgressFunc of ctx, if any. A
// handler that cannot be added (no event listener) only loses the
// progress, never the operation.
func watch(ctx context.Context, op incus.Operation) {
	f := progressOf(ctx)
	if f == nil || op == nil {
		return
	}
	_, _ = op.AddHandler(func(o api.Operation) {
		if s := ProgressText(o.Metadata); s != "" {
			f(s)
		}
	})
}
