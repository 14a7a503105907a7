// Package host holds the host context values the compiler reads (SPEC.md
// §2.14). The compiler never reads the host itself: the command layer
// gathers these values (see internal/hostenv) and passes them in.
package host

import "github.com/anklume/anklume/compiler/structure"

// Context is the nesting context from the context directory (/etc/anklume).
type Context struct {
	// Level is absolute_level (0 when the file is absent).
	Level int
	// VMNested is vm_nested: nil when unknown (file absent).
	VMNested *bool
	// Yolo is the yolo flag.
	Yolo bool
	// RelativeLevel is relative_level.
	RelativeLevel int
}

// Resources is the host CPU count and memory in bytes, used by the resource
// policy (SPEC.md §4.9). A nil *Resources means detection failed.
type Resources struct {
	CPU    int64
	Memory int64
}

// Interface is one host network interface address, for rule V31.
type Interface struct {
	Name string
	// CIDR is the address with its prefix length, e.g. "10.120.0.5/24".
	CIDR string
}

// Options carries every host-derived input of the compiler.
type Options struct {
	Context   Context
	Resources *Resources
	// Interfaces are the host interface addresses (V31).
	Interfaces []Interface
	// SkipHostSubnetCheck disables V31 (ANKLUME_SKIP_HOST_SUBNET_CHECK=1).
	SkipHostSubnetCheck bool
	// RemoteSubnetWarning is set with --remote: V31 is skipped with a warning.
	Remote bool
	// ImageMap maps image references (ANKLUME_IMAGE_MAP, §4.12).
	ImageMap map[string]string
	// SchemaMemo remembers the PSOTs the schema accepted, across runs
	// (nil: every run validates). It is no host fact: it rides here
	// because every command builds its compile options in one place
	// (cmd/root's factory) and hands them to compiler.Compile. It changes
	// no result, only the time taken, so it is left out of the JSON form
	// of the options (sync's stamp key hashes that form).
	SchemaMemo structure.Memo `json:"-"`
}
