//go:build !unix

package server

// writable is not checked off unix: the start fails later if it is not.
func writable(string) error { return nil }

// writableFile is not checked off unix.
func writableFile(string) error { return nil }
