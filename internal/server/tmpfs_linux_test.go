package server_test

import "syscall"

// mountTmpfs mounts a tmpfs on dir (root only).
func mountTmpfs(dir, opts string) (unmount func() error, err error) {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		return nil, err
	}
	return func() error { return syscall.Unmount(dir, 0) }, nil
}
