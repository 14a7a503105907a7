package plural

import "testing"

func TestN(t *testing.T) {
	tests := []struct {
		n      int
		word   string
		plural []string
		want   string
	}{
		{0, "domain", nil, "0 domains"},
		{1, "domain", nil, "1 domain"},
		{2, "machine", nil, "2 machines"},
		{1, "policy", []string{"policies"}, "1 policy"},
		{3, "policy", []string{"policies"}, "3 policies"},
	}
	for _, tc := range tests {
		if got := N(tc.n, tc.word, tc.plural...); got != tc.want {
			t.Errorf("N(%d, %q) = %q, want %q", tc.n, tc.word, got, tc.want)
		}
	}
}
