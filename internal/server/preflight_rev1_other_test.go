//go:build !unix

package server_test

import "errors"

func mkfifo(string) error { return errors.New("not supported") }
