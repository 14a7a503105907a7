package validate

import (
	"bytes"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
)

// TestNewCmdValidateFlags checks flag parsing through the injected run
// function, without running the compiler.
func TestNewCmdValidateFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantJSON bool
		wantErr  bool
	}{
		{args: nil, wantJSON: false},
		{args: []string{"--json"}, wantJSON: true},
		{args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		f := &cmdutil.Factory{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut}, Globals: &cmdutil.GlobalOptions{}}
		var got *Options
		cmd := NewCmdValidate(f, func(o *Options) error { got = o; return nil })
		cmd.SetArgs(append([]string{}, tt.args...)) // never nil: cobra would read os.Args
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.Execute()
		if tt.wantErr {
			if err == nil {
				t.Errorf("%q: no error", tt.args)
			}
			continue
		}
		if err != nil || got == nil {
			t.Fatalf("%q: err %v, run called %v", tt.args, err, got != nil)
		}
		if got.JSON != tt.wantJSON {
			t.Errorf("%q: JSON = %v, want %v", tt.args, got.JSON, tt.wantJSON)
		}
	}
}
