package version

import (
	"runtime/debug"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
)

func TestResolve(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name            string
		ldVer, ldCommit string
		bi              *debug.BuildInfo
		want            cmdutil.BuildInfo
	}{
		{"ldflags win", "1.2.3", "abc", &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: vcs("false")}, cmdutil.BuildInfo{Version: "1.2.3", Commit: "abc"}},
		{"go install @version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, cmdutil.BuildInfo{Version: "v1.4.0"}},
		{"checkout build", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, cmdutil.BuildInfo{Commit: "0123456789ab"}},
		{"dirty checkout", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205-0123456789ab+dirty"}, Settings: vcs("true")},
			cmdutil.BuildInfo{Version: "v0.0.0-20261205-0123456789ab+dirty", Commit: "0123456789ab-dirty"}},
		{"no build info", "", "", nil, cmdutil.BuildInfo{}},
	}
	for _, tc := range tests {
		if got := Resolve(tc.ldVer, tc.ldCommit, tc.bi); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
