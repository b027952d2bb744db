package server

import "testing"

func TestInsideDir(t *testing.T) {
	for _, tc := range []struct {
		path, dir string
		want      bool
	}{
		{"/var/lib/parley/master.key", "/var/lib/parley", true},
		{"/var/lib/parley/sub/master.key", "/var/lib/parley/", true},
		{"/etc/parley/master.key", "/var/lib/parley", false},
		{"/var/lib/parley-keys/master.key", "/var/lib/parley", false},
		{"/var/lib/master.key", "/var/lib/parley", false},
	} {
		if got := insideDir(tc.path, tc.dir); got != tc.want {
			t.Errorf("insideDir(%q, %q) = %v, want %v", tc.path, tc.dir, got, tc.want)
		}
	}
}
