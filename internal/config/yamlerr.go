package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLine matches the line prefix of yaml.v3's decoding errors.
var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlTag matches a YAML tag (!!str) in a type error.
var yamlTag = regexp.MustCompile(`\s?!!\w+`)

// yamlGoType matches the Go type yaml.v3 names in a type error.
var yamlGoType = regexp.MustCompile(` into (\S+)$`)

// friendlyYAML rewrites yaml.v3's decoding errors so that each names the
// setting (e.g. "directline.max_connections (line 9)") rather than only a
// line and a Go type: operators read these, not Go programmers. Errors
// it does not recognise are returned as they are.
func friendlyYAML(src []byte, err error) error {
	var lines []string
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		lines = te.Errors
	case yamlLine.MatchString(err.Error()):
		lines = []string{err.Error()} // a value's own check (a duration)
	default:
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil {
		return err
	}
	all := map[int][]string{}
	walkYAML(&root, "", all)
	// The innermost key on a line: with a flow mapping ("directline:
	// {token_ttl: 5}") the value's own setting, not its parent.
	paths := map[int]string{}
	for l, ps := range all {
		paths[l] = ps[len(ps)-1]
		for i := len(ps) - 1; i >= 0; i-- { // a key's, before a list item's
			if !strings.HasSuffix(ps[i], "]") {
				paths[l] = ps[i]
				break
			}
		}
	}
	out := make([]string, 0, len(lines))
	for _, e := range lines {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			out = append(out, e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		where := "line " + m[1]
		if p := paths[line]; p != "" {
			where = p + " (line " + m[1] + ")"
		}
		switch {
		case strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type "):
			// The line may hold the parent (a flow mapping on one line):
			// name the unknown key itself.
			name, _, _ := strings.Cut(strings.TrimPrefix(msg, "field "), " not found")
			p := name
			for _, q := range all[line] {
				if q == name || strings.HasSuffix(q, "."+name) {
					p = q
					break
				}
			}
			if p == name && len(all[line]) > 0 && all[line][0] != name {
				p = all[line][0] + "." + name
			}
			where = p + " (line " + m[1] + ")"
			msg = "unknown setting (misspelled, or not at this level); the README's Configuration section lists them"
		case strings.HasPrefix(msg, "cannot unmarshal "):
			if t := yamlGoType.FindStringSubmatch(msg); t != nil {
				msg = strings.TrimSuffix(msg, t[0]) + ": want " + goTypeWords(t[1])
			}
			msg = yamlTag.ReplaceAllString(strings.Replace(msg, "cannot unmarshal ", "cannot read ", 1), "")
		}
		out = append(out, where+": "+msg)
	}
	return fmt.Errorf("%s", strings.Join(out, "\n"))
}

// walkYAML records, for each line, the dotted paths of the mapping keys
// on it, outermost first (list items as name[i]).
func walkYAML(n *yaml.Node, prefix string, paths map[int][]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkYAML(c, prefix, paths)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			paths[k.Line] = append(paths[k.Line], p)
			walkYAML(v, p, paths)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if c.Kind != yaml.MappingNode {
				paths[c.Line] = append(paths[c.Line], p)
			}
			walkYAML(c, p, paths)
		}
	}
}

// goTypeWords says a Go type as a configuration value.
func goTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a text value"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map[") || strings.HasPrefix(t, "config."):
		return "a mapping (key: value lines)"
	}
	return t
}
