//go:build !linux

package server_test

import "errors"

// mountTmpfs needs Linux.
func mountTmpfs(dir, opts string) (unmount func() error, err error) {
	return nil, errors.New("tmpfs mounts need Linux")
}
