package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command group refuses an unknown subcommand with an error (a
// non-zero exit) that names it, and still prints its help when called
// alone.
func TestEveryGroupRefusesUnknownSubcommands(t *testing.T) {
	root := (&app{}).root()
	var groups [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			p := append(append([]string{}, path...), sub.Name())
			if sub.Name() == "bench" { // runnable itself (relay is a hidden helper)
				continue
			}
			if sub.HasSubCommands() {
				groups = append(groups, p)
			}
			walk(sub, p)
		}
	}
	walk(root, nil)
	want := map[string]bool{"bot": false, "bot secret": false, "site": false, "secret": false, "keys": false, "deliveries": false, "deliveries dead": false, "completion": false, "conversation": false, "oauth": false, "oauth connection": false}
	for _, g := range groups {
		path := strings.Join(g, " ")
		want[path] = true
		_, _, err := run(t, nil, append(g, "frobnicate")...)
		if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate" for "parley `+path+`"`) || !strings.Contains(err.Error(), "valid: ") {
			t.Errorf("parley %s frobnicate: err = %v; want unknown command with the valid ones", path, err)
		}
		out, _, err := run(t, nil, g...)
		if err != nil || !strings.Contains(out, "Available Commands") {
			t.Errorf("parley %s: err = %v, out %q; want its help", path, err, out)
		}
	}
	for g, seen := range want {
		if !seen {
			t.Errorf("group %q not found in the command tree", g)
		}
	}
}

// A mistyped subcommand followed by its flags is an unknown command, not
// an unknown flag; a close typo gets cobra's suggestion.
func TestSubcommandTypoSaysUnknownCommand(t *testing.T) {
	_, _, err := run(t, nil, "bot", "craete", "--name", "x", "--endpoint", "https://public.example.test/api")
	if err == nil || !strings.Contains(err.Error(), `unknown command "craete"`) || strings.Contains(err.Error(), "unknown flag") {
		t.Errorf("bot craete --name: err = %v", err)
	}
	_, _, err = run(t, nil, "keys", "rotat", "--force")
	if err == nil || !strings.Contains(err.Error(), `did you mean "rotate"?`) {
		t.Errorf("keys rotat: err = %v; want a suggestion", err)
	}
	_, _, err = run(t, nil, "deliveries", "dead", "lst", "--json")
	if err == nil || !strings.Contains(err.Error(), `unknown command "lst" for "parley deliveries dead"`) {
		t.Errorf("deliveries dead lst: err = %v", err)
	}
	// A real unknown flag on a real command is still reported as such.
	_, _, err = run(t, nil, "bot", "list", "--nope")
	if err == nil || !strings.Contains(err.Error(), "unknown flag: --nope") {
		t.Errorf("bot list --nope: err = %v", err)
	}
	_, _, err = run(t, nil, "nosuch")
	if err == nil || !strings.Contains(err.Error(), `unknown command "nosuch"`) {
		t.Errorf("parley nosuch: err = %v", err)
	}
}

func TestRootAndHelp(t *testing.T) {
	if out, _, err := run(t, nil); err != nil || !strings.Contains(out, "Available Commands") {
		t.Errorf("parley: err = %v, out %q", err, out)
	}
	if out, _, err := run(t, nil, "help", "bot", "create"); err != nil || !strings.Contains(out, "--endpoint") {
		t.Errorf("parley help bot create: err = %v", err)
	}
	for _, args := range [][]string{{"help", "x"}, {"help", "bot", "frobnicate"}} {
		if _, _, err := run(t, nil, args...); err == nil || !strings.Contains(err.Error(), "no help topic") {
			t.Errorf("parley %v: err = %v; want no help topic", args, err)
		}
	}
}
