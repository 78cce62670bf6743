#!/usr/bin/env bash
# Builds bin/hydra, Ory Hydra: the OpenID Connect provider of the logout
# tests, which has what Dex lacks (an end_session_endpoint for RP-initiated
# logout, and Back-Channel Logout). Pinned in tools/hydra/go.mod (a tool
# directive), with Hydra's own replace of gobuffalo/pop, which a module that
# depends on Hydra must repeat. The sqlite tags make DSN=memory work; cgo
# (gcc) is needed for them. Rebuilds only when the pin changes. A few
# minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bin/hydra ] || [ tools/hydra/go.mod -nt bin/hydra ]; then
	echo "building Ory Hydra (tools/hydra)" >&2
	mkdir -p bin
	(cd tools/hydra && CGO_ENABLED=1 GOFLAGS="${GOFLAGS:--buildvcs=false}" \
		go build -tags sqlite,sqlite_omit_load_extension -o ../../bin/hydra.tmp github.com/ory/hydra/v2)
	mv bin/hydra.tmp bin/hydra
fi
