#!/usr/bin/env bash
# Builds ./caddy: Caddy v2.11.9 with caddy-iap from this working tree.
#
# xcaddy v0.4.5 is pinned in tools/xcaddy/go.mod and built through the Go
# module proxy (`go install xcaddy@version` is refused by some proxies, see
# the README). Usage: ./xcaddy.sh [extra xcaddy build flags], e.g. another
# module, at an exact version (the proxy may refuse version lists):
#
#   ./xcaddy.sh --with github.com/pberkel/caddy-storage-redis@v1.8.1
#
# OUTPUT=path builds there instead of ./caddy.
set -euo pipefail
cd "$(dirname "$0")"

CADDY_VERSION=v2.11.9
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p bin
if [ ! -x bin/xcaddy ] || [ tools/xcaddy/go.mod -nt bin/xcaddy ]; then
	echo "xcaddy.sh: building xcaddy (pinned in tools/xcaddy/go.mod)" >&2
	(cd tools/xcaddy && go build -o ../../bin/xcaddy github.com/caddyserver/xcaddy/cmd/xcaddy)
fi

echo "xcaddy.sh: building ./caddy (Caddy $CADDY_VERSION + caddy-iap from $(pwd))" >&2
output="${OUTPUT:-./caddy}"
bin/xcaddy build "$CADDY_VERSION" --output "$output" \
	--with github.com/caddy-iap/caddy-iap@v0.0.0="$(pwd)" "$@"

# caddy-iap's modules, and those of the extra --with modules.
"$output" list-modules --skip-standard | grep -vE '^(Non-standard|Unknown|  )' | grep . >&2
