#!/usr/bin/env bash
# The project's test command (README, .ci/run): fetches the real tokenizer if
# it is not cached, checks formatting and vet, runs every test under the race
# detector with the assembly kernels and again without them (-tags purego),
# the statistical ones once more in full (plain),
# runs the official openai npm client's tests against `medgemma serve`, then
# runs each fuzz target briefly on top of its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-tokenizer.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on: $unformatted" >&2
  exit 1
fi
go vet ./...
go vet -tags purego ./...
# Every test under the race detector, with the assembly kernels...
go test -race -count=1 ./...
# ...and again with every assembly kernel off (the plain Go references alone).
go test -count=1 -tags purego ./...
# The statistical tests in full (both runs above take a few of their rounds:
# internal/testenv's Race and Purego): structured answers to 200 random
# schemas and the clinical ones through the tiny model, and through the API.
go test -count=1 -run '^(TestStructuredAnswers|TestStructuredOutput|TestGenerationGrammar)$' . ./server ./generate

# The official openai npm client against `medgemma serve` on loopback.
mkdir -p .cache/bin
CGO_ENABLED=0 go build -o .cache/bin/medgemma ./cmd/medgemma
(cd tests/openai && npm ci --no-audit --no-fund --loglevel=error && MEDGEMMA_BIN=../../.cache/bin/medgemma node --test)

# Fuzz budgets are execution counts, not durations: with a duration Go 1.26's
# fuzz coordinator can report a spurious "context deadline exceeded" failure
# when the deadline races a worker's last call (go.dev/issue/75804, fixed in
# Go 1.27). Each count is about 5-10 s on two cores. FUZZSCALE multiplies them.
scale=${FUZZSCALE:-1}
fuzz() { go test -run '^$' -fuzz "^$1\$" -fuzztime "$(($3 * scale))x" -fuzzminimizetime 200x "$2"; }
fuzz FuzzEncode ./tokenizer 30000
fuzz FuzzParse ./tokenizer 80000
fuzz FuzzDecode ./imageproc 30000
fuzz FuzzJPEG ./imageproc/jpeg 200000
fuzz FuzzParse ./safetensors 200000
fuzz FuzzParse ./gguf 200000
fuzz FuzzChat . 300
fuzz FuzzLogitsHeader . 100000
fuzz FuzzDecodeRequest ./server 50000
fuzz FuzzGBNF ./grammar 50000
fuzz FuzzJSONSchema ./grammar 50000
