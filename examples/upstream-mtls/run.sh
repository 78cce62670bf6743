#!/usr/bin/env bash
# Reproduces Pomerium's "Upstream mutual TLS" guide on one machine, step by
# step, and checks that each step shows what the guide shows. Exits non-zero
# if one does not. Needs ./caddy (built by ./xcaddy.sh), mkcert, openssl and
# curl; installs the last three with apt-get when missing.
#
#   examples/upstream-mtls/run.sh            # run the guide and stop
#   KEEP_RUNNING=1 examples/upstream-mtls/run.sh   # leave it up to play with
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/caddy-iap-upstream-mtls.XXXXXX)}"
host=openssl.localhost.example
https_port=8443
upstream_port=44330
. "$root/examples/lib.sh"
need mkcert openssl curl

export CAROOT="$work/ca" CERTS="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config"
cd "$work"

say "Create a root CA, the upstream's certificate and Caddy's client certificate (mkcert)"
mkcert openssl.localhost 2>&1 | grep -E 'certificate is at|valid for' || true
mkcert -client 'pomerium@localhost' 2>&1 | grep -E 'certificate is at' || true
ls "$CAROOT"

start_upstream() {
	say "openssl s_server -www $* on 127.0.0.1:$upstream_port"
	openssl s_server "$@" -key ./openssl.localhost-key.pem -cert ./openssl.localhost.pem \
		-accept "127.0.0.1:$upstream_port" -www >"$work/s_server.log" 2>&1 &
	upstream_pid=$!
	pids+=("$upstream_pid")
	wait_port "$upstream_port" || fail "s_server did not start: $(cat "$work/s_server.log")"
}
stop_upstream() { kill "$upstream_pid" 2>/dev/null; wait "$upstream_pid" 2>/dev/null || true; }

fetch() { https_get "$host" --cacert "$XDG_DATA_HOME/caddy/pki/authorities/local/root.crt"; }

# The guide's route without the client certificate lines, for its first half.
grep -v tls_client_ "$here/Caddyfile" >"$work/Caddyfile.no-client-cert"

start_upstream
start_caddy "$work/Caddyfile.no-client-cert"
say "curl https://$host:$https_port/ : Caddy verifies s_server as openssl.localhost"
code=$(fetch); echo "HTTP $code"; tail -n 3 "$work/body"
[ "$code" = 200 ] || fail "want 200, got $code"
grep -q "no client certificate available" "$work/body" || fail "the page should say: no client certificate available"
stop_upstream

start_upstream -Verify 1
say "curl again: s_server now requires a client certificate and Caddy has none"
code=$(fetch); echo "HTTP $code"
[ "$code" = 502 ] || fail "want 502, got $code"
grep -q "peer did not return a certificate" "$work/s_server.log" || fail "s_server should log: peer did not return a certificate"
grep -q '"cause":"client-certificate-required"' "$work/caddy.log" || fail "caddy should log the cause client-certificate-required"
grep '"upstream TLS connection failed"' "$work/caddy.log" | tail -n 1
stop_caddy

start_caddy "$here/Caddyfile"
say "curl again: Caddy presents pomerium@localhost-client.pem"
code=$(fetch); echo "HTTP $code"
[ "$code" = 200 ] || fail "want 200, got $code"
grep -A 12 "^Client certificate" "$work/body" | grep -E "Client certificate|Subject:|Issuer:" || true
grep -q "^Client certificate" "$work/body" || fail "the page should show the client certificate"
grep -q "pomerium@localhost" "$work/body" || fail "the page should name pomerium@localhost"

say "PASS: the upstream mTLS guide works end to end (files in $work)"
if [ -n "${KEEP_RUNNING:-}" ]; then
	echo "Try: curl --cacert $XDG_DATA_HOME/caddy/pki/authorities/local/root.crt --resolve $host:$https_port:127.0.0.1 https://$host:$https_port/"
	echo "Ctrl-C stops everything."
	wait
fi
