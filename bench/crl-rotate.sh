#!/usr/bin/env bash
# The crl-rotate drill (bench/run.sh crl-rotate): ca_file and crl_file of
# iap_mtls replaced on disk under load, no reload, and one client revoked
# halfway; it counts what that client still got in (bench/crlrotate).
#
#   bench/crl-rotate.sh                    # 30 s, 16 clients
#   DURATION=60s CLIENTS=32 bench/crl-rotate.sh
#
# It builds ./caddy (xcaddy.sh) when missing or with REBUILD=1. Caddy, its
# files and the certificates live in a temp directory that bench/crlrotate
# removes on exit, INT or TERM.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -x "$root/caddy" ] && [ -z "${REBUILD:-}" ] || "$root/xcaddy.sh"
cd "$root"
exec go run ./bench/crlrotate -caddy "$root/caddy" -duration "${DURATION:-30s}" -clients "${CLIENTS:-16}"
