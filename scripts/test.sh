#!/usr/bin/env bash
# Runs every test of caddy-iap on a fresh machine: installs what the tests
# need (Debian's openssl, curl, mkcert, apache2 and chromium; Dex, Hydra and
# Jaeger through the Go module proxy), checks formatting and vet, runs `go test -race` over every
# package (end-to-end tests start real Caddy, openssl s_server, Apache, Dex
# and headless Chromium processes on loopback), then builds ./caddy with
# xcaddy.sh and runs every example script, each of which checks its own
# output.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

step() { printf '\n=== %s\n' "$*"; }

missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v mkcert >/dev/null || missing+=(mkcert)
[ -x /usr/sbin/apache2 ] || missing+=(apache2)
command -v chromium >/dev/null || missing+=(chromium)
# certutil and pk12util put a client certificate in Chromium's NSS database.
command -v pk12util >/dev/null || missing+=(libnss3-tools)
# Ory Hydra's build (scripts/build-hydra.sh) is cgo: SQLite, for DSN=memory.
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
if ((${#missing[@]})); then
	step "installing ${missing[*]} (Debian packages)"
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	# Keep apt from starting the apache2 service: the tests run their own.
	norc=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod +x /usr/sbin/policy-rc.d
		norc=1
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	[ -z "$norc" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi

# Dex, the OpenID Connect provider the sign-in tests use.
step "Dex"
scripts/build-dex.sh
step "Ory Hydra"; scripts/build-hydra.sh # the logout tests' IdP (end_session, back-channel logout)
step "Jaeger"; scripts/build-jaeger.sh # the tracing tests' trace backend (OTLP in, query API out)

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
go test -race -count=1 ./...

step "build ./caddy with xcaddy.sh"
./xcaddy.sh

for ex in examples/*/run.sh; do
	step "example $ex"
	bash "$ex"
done

step "quickstart (./quickstart.sh --check)"
./quickstart.sh --check

step "quickstart from its Pomerium config.yaml (./quickstart.sh --pomerium --check)"
./quickstart.sh --pomerium --check

step "all tests passed"
