package semantic

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// scheduleAliases are the one-word triggers of the Incus schedule grammar
// (SPEC.md §2.8).
var scheduleAliases = map[string]bool{
	"@hourly": true, "@daily": true, "@midnight": true, "@weekly": true, "@monthly": true,
	"@annually": true, "@yearly": true, "@startup": true, "@never": true,
}

// cronField is the range and the names of one cron field.
type cronField struct {
	min, max int
	names    map[string]int
}

var cronFields = [5]cronField{
	{min: 0, max: 59}, // minute
	{min: 0, max: 23}, // hour
	{min: 1, max: 31}, // day of month
	{min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}},
	{min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}},
}

// ValidSchedule reports whether s follows the Incus schedule grammar
// (rule V18): triggers separated by ", ", each (lower-cased) one of the nine
// aliases or 5 cron fields separated by single spaces.
func ValidSchedule(s string) bool {
	for _, trig := range strings.Split(strings.ToLower(s), ", ") {
		if scheduleAliases[trig] {
			continue
		}
		fields := strings.Split(trig, " ")
		if len(fields) != len(cronFields) {
			return false
		}
		for i, f := range fields {
			if !validCronField(f, cronFields[i]) {
				return false
			}
		}
	}
	return true
}

// validCronField checks one field: a comma-separated list of `*`, `?`,
// a value or a range a-b, each with an optional step /n (n ≥ 1). The bounds
// are those of the robfig/cron standard parser that Incus uses.
func validCronField(f string, r cronField) bool {
	for _, item := range strings.Split(f, ",") {
		base, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			n, ok := cronNumber(step)
			if !ok || n < 1 {
				return false
			}
		}
		if base == "*" || base == "?" {
			continue
		}
		lo, hi, isRange := strings.Cut(base, "-")
		a, ok := cronValue(lo, r)
		if !ok {
			return false
		}
		b := a
		if isRange {
			if b, ok = cronValue(hi, r); !ok || b < a {
				return false
			}
		}
	}
	return true
}

// cronValue reads a number or a name of field r and checks its bounds.
func cronValue(s string, r cronField) (int, bool) {
	if v, ok := r.names[s]; ok {
		return v, true
	}
	n, ok := cronNumber(s)
	if !ok || n < r.min || n > r.max {
		return 0, false
	}
	return n, true
}

// cronNumber reads an unsigned decimal number.
func cronNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// The regular expressions of this package are compiled on first use,
// not at package init, which every run of anklume pays (`anklume
// version` included) whether or not it reaches them.
var (
	expiryRe   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+[MHdwmy]( [0-9]+[MHdwmy])*$`) })
	v1ExpiryRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+[hm]$`) })
)

// NormalizeExpiry applies the v1 rewrite of SPEC.md §2.8 to a
// snapshots_expiry value and checks the Incus grammar. A single term in `h`
// or `m` (v1 hours or minutes) becomes `H` or `M`; the result differs from
// s exactly when it was rewritten (warning W19). ok is false when the
// result does not match ^\d+[MHdwmy]( \d+[MHdwmy])*$ (rule V18).
func NormalizeExpiry(s string) (norm string, ok bool) {
	norm = s
	if v1ExpiryRe().MatchString(s) {
		norm = s[:len(s)-1] + strings.ToUpper(s[len(s)-1:])
	}
	return norm, expiryRe().MatchString(norm)
}
