#!/usr/bin/env bash
# Parley's whole test suite: the README's test command, and what CI runs.
# Needs Go, Node.js with npm (for the end-to-end tests) and the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/node_modules/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
# The version CI runs (.ci/run calls this script): installed when missing or
# different, so that a local run finds what CI would.
staticcheck_version=0.8.2
gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
sc=$(command -v staticcheck || echo "$gobin/staticcheck")
if ! { [ -x "$sc" ] && "$sc" -version 2>/dev/null | grep -qF "($staticcheck_version)"; }; then
  echo "installing staticcheck v$staticcheck_version"
  if ! go install "honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"; then
    echo "staticcheck v$staticcheck_version could not be installed (network?); install it with:"
    echo "  go install honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"
    exit 1
  fi
  sc="$gobin/staticcheck"
fi
"$sc" ./...

step "go test (race detector)"
go test -race -count=1 ./...

step "PKCS#11 variant (-tags pkcs11, cgo, against SoftHSM2)"
# Without SoftHSM2 the HSM tests skip, saying how to install it; with CI set
# they fail instead.
if [ "$(go env CGO_ENABLED)" != 1 ] && [ -z "${CI:-}" ]; then
  echo "cgo is off (no C compiler): skipped"
else
  go vet -tags pkcs11 ./...
  "$sc" -tags pkcs11 ./internal/keyring/pkcs11/... ./internal/server
  go build -tags pkcs11 -o /tmp/parley-pkcs11 ./cmd/parley
  go test -race -count=1 -tags pkcs11 ./internal/keyring/pkcs11/...
  go test -count=1 -tags pkcs11 -run PKCS11 ./internal/server
fi

step "fuzz (short runs)"
# Minimizing each new interesting input may take up to a minute by default,
# during which the workers run nothing new: a short run would mostly wait.
# The budgets are execution counts (about 10 s each on a 2-core CI machine),
# not durations: with a duration, Go 1.26's fuzz coordinator can report a
# spurious "context deadline exceeded" at the deadline with no failing input
# (go.dev/issue/75804, fixed in Go 1.27). FUZZTIME overrides every budget.
fuzz() { go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-$3}" -fuzzminimizetime 2s; }
fuzz ./internal/conversation FuzzParse 70000x
fuzz ./internal/conversation FuzzParseWatermark 80000x
fuzz ./internal/identity FuzzVerify 25000x
fuzz ./internal/guard FuzzClientAddr 180000x
fuzz ./internal/redact FuzzRedact 400000x
fuzz ./internal/conversation FuzzParseStream 80000x
fuzz ./internal/strictjson FuzzNoDuplicateKeys 60000x
fuzz ./internal/strictjson FuzzStrictJSON 200000x
fuzz ./internal/audit FuzzAnchorLine 80000x
fuzz ./internal/audit FuzzParseHead 40000x
fuzz ./internal/operator FuzzVerifyPasswordPHC 40000x

step "end-to-end (official npm clients)"
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
go build -o "$bin_dir/parley" ./cmd/parley
for dir in e2e examples/botbuilder-bot examples/site-node examples/agents-sdk-agent; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
  fi
done
(cd e2e && PARLEY_BIN="$bin_dir/parley" npm test)
