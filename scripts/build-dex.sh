#!/usr/bin/env bash
# Builds bin/dex, the OpenID Connect provider of the tests and the
# quickstart, from the pin in tools/dex/go.mod (Dex's v2 tags are not under
# /v2, so `go install github.com/dexidp/dex/cmd/dex@v2...` cannot work).
# Rebuilds only when the pin changes. About 3 minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bin/dex ] || [ tools/dex/go.mod -nt bin/dex ]; then
	echo "building Dex (tools/dex)" >&2
	mkdir -p bin
	(cd tools/dex && GOFLAGS="${GOFLAGS:--buildvcs=false}" go build -o ../../bin/dex github.com/dexidp/dex/cmd/dex)
fi
