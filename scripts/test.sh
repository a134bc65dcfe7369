#!/usr/bin/env bash
# The project's test command (README, .ci/run): fetches the real tokenizer if
# it is not cached, checks formatting and vet, runs every test, then runs each
# fuzz target briefly on top of its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-tokenizer.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 ./...

fuzztime=${FUZZTIME:-10s}
fuzz() { go test -run '^$' -fuzz "^$1\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$2"; }
fuzz FuzzEncode ./tokenizer
fuzz FuzzParse ./tokenizer
fuzz FuzzDecode ./imageproc
fuzz FuzzParse ./safetensors
