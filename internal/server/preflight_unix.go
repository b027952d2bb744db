//go:build unix

package server

import "syscall"

// writable reports whether this process can create files in dir (or write
// it): access(2) with W_OK|X_OK, which also sees a read-only file system.
func writable(dir string) error {
	return syscall.Access(dir, 0x2|0x1)
}

// writableFile reports whether this process can write the file.
func writableFile(path string) error {
	return syscall.Access(path, 0x2)
}
