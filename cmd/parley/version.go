package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release version, set at link time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/parley
//
// It is the one package-level variable in this command, and the accepted
// exception to "no globals": -ldflags -X can only set a package-level
// string variable. Nothing writes it at run time.
var version = "(devel)"

// buildInfo is what `parley version` prints.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
}

// readBuildInfo combines the linked-in version with what the Go toolchain
// recorded: the module version when built by `go install module@version`,
// and the VCS revision when built from a checkout.
func readBuildInfo(linked string, bi *debug.BuildInfo, ok bool) buildInfo {
	info := buildInfo{Version: linked, GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" || info.Version == "(devel)" {
		if v := bi.Main.Version; v != "" {
			info.Version = v
		} else {
			info.Version = "(devel)"
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

func (i buildInfo) String() string {
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	} else if i.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("parley %s\ncommit %s\n%s\n", i.Version, commit, i.GoVersion)
}

func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			bi, ok := debug.ReadBuildInfo()
			info := readBuildInfo(version, bi, ok)
			if asJSON {
				if err := json.NewEncoder(a.stdout).Encode(info); err != nil {
					return fmt.Errorf("write version: %w", err)
				}
				return nil
			}
			if _, err := fmt.Fprint(a.stdout, info); err != nil {
				return fmt.Errorf("write version: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// currentBuildInfo is this binary's version, commit and Go version.
func currentBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	return readBuildInfo(version, bi, ok)
}
