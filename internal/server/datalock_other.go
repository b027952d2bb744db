//go:build !unix

package server

import "os"

// lockDataDir: no advisory lock here (Parley runs on Unix); one gateway
// per data directory is the operator's to keep.
func lockDataDir(string) (*os.File, error) { return nil, nil }
