package adminapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/parley-gw/parley/internal/admin"
)

// TestOpenAPIMatchesRoutes: the OpenAPI file has exactly the routes of
// admin.Routes (method and path), and every $ref resolves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
		Comps   map[string]map[string]map[string]any `yaml:"components"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	var inDoc, inTable []string
	for path, ops := range doc.Paths {
		for m, op := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+path)
			sec, hasSec := op["security"]
			public := hasSec && len(sec.([]any)) == 0
			i := slices.IndexFunc(admin.Routes, func(r admin.Route) bool { return r.Key() == strings.ToUpper(m)+" "+path })
			if i >= 0 && admin.Routes[i].Public != public {
				t.Errorf("%s %s: public %v in the file, %v in the table", m, path, public, admin.Routes[i].Public)
			}
		}
	}
	for _, r := range admin.Routes {
		inTable = append(inTable, r.Key())
	}
	slices.Sort(inDoc)
	slices.Sort(inTable)
	for _, k := range inTable {
		if !slices.Contains(inDoc, k) {
			t.Errorf("route %s is not in openapi.yaml", k)
		}
	}
	for _, k := range inDoc {
		if !slices.Contains(inTable, k) {
			t.Errorf("openapi.yaml has %s, which admin.Routes does not", k)
		}
	}
	// Every $ref names a component.
	var raw any
	_ = yaml.Unmarshal(openAPI, &raw)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "$ref" {
					parts := strings.Split(strings.TrimPrefix(c.(string), "#/components/"), "/")
					if len(parts) != 2 || doc.Comps[parts[0]][parts[1]] == nil {
						t.Errorf("$ref %s resolves to nothing", c)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(raw)
	for _, s := range []string{"session", "csrf", "bearer"} {
		if doc.Comps["securitySchemes"][s] == nil {
			t.Errorf("no security scheme %s", s)
		}
	}
}

// TestHandlersCoverRoutes: this package serves every route of the table
// but the operator package's, and nothing else.
func TestHandlersCoverRoutes(t *testing.T) {
	mine := (&api{}).handlers()
	operator := []string{"/session", "/enroll", "/sso/", "/me/", "/operators", "/invitations", "/tokens"}
	for _, r := range admin.Routes {
		isOp := slices.ContainsFunc(operator, func(p string) bool { return strings.HasPrefix(r.Pattern, admin.Prefix+p) })
		if _, ok := mine[r.Key()]; ok == isOp {
			t.Errorf("route %s: served here %v, operator route %v", r.Key(), ok, isOp)
		}
	}
	// A handler for a route outside the table is a programming error.
	defer func() {
		if recover() == nil {
			t.Error("New accepted an operator handler outside admin.Routes")
		}
	}()
	New(Config{Operators: extra{}})
}

type extra struct{}

func (extra) Handlers() map[string]http.Handler {
	return map[string]http.Handler{"GET /admin/v1/backdoor": http.NotFoundHandler()}
}
