#!/usr/bin/env bash
# Reproduces Pomerium's "Downstream mutual TLS" guide on one machine, step by
# step, and checks that each step shows what the guide shows. Exits non-zero
# if one does not. Needs ./caddy (built by ./xcaddy.sh), mkcert and curl;
# installs them with apt-get when missing.
#
#   examples/downstream-mtls/run.sh                  # run the guide and stop
#   KEEP_RUNNING=1 examples/downstream-mtls/run.sh   # leave it up to play with
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/caddy-iap-downstream-mtls.XXXXXX)}"
host=verify.localhost.example
https_port=8443
. "$root/examples/lib.sh"
need mkcert curl openssl

export CAROOT="$work/ca" CERTS="$work"
cd "$work"

say "Create a root CA and a wildcard server certificate (mkcert '*.localhost.example')"
mkcert '*.localhost.example' 2>&1 | grep -E 'certificate is at' || true

say "Create a client certificate, also as PKCS#12 (mkcert -client -pkcs12, password changeit)"
mkcert -client 'alice@localhost.example' 2>&1 | grep -E 'certificate is at' || true
mkcert -client -pkcs12 'alice@localhost.example' 2>&1 | grep -E 'PKCS#12 bundle is at' || true
p12=$(ls ./*client.p12)
# mkcert 1.4.4 encrypts the bundle with RC2-40, which OpenSSL 3 (and so
# curl) refuses; re-encrypt it with today's defaults, same password.
openssl pkcs12 -legacy -in "$p12" -passin pass:changeit -nodes -out alice-bundle.pem
openssl pkcs12 -export -in alice-bundle.pem -passout pass:changeit -out alice-client-modern.p12
rm alice-bundle.pem
p12=./alice-client-modern.p12
ca="$CAROOT/rootCA.pem"

start_caddy "$here/Caddyfile"

say "curl without a client certificate: refused with 495"
code=$(https_get "$host" --cacert "$ca"); echo "HTTP $code"; cat "$work/body"; echo
[ "$code" = 495 ] || fail "want 495, got $code"
grep -q '"reason":"client-certificate-required"' "$work/body" || fail "the JSON should give the reason client-certificate-required"

say "curl with the client certificate (PEM)"
code=$(https_get "$host" --cacert "$ca" --cert ./alice@localhost.example-client.pem --key ./alice@localhost.example-client-key.pem)
echo "HTTP $code"; cut -c1-120 "$work/body"
[ "$code" = 200 ] || fail "want 200, got $code"
grep -q "Client-Cert: :" "$work/body" || fail "the upstream should receive the Client-Cert header"

say "curl with the client certificate (PKCS#12, password changeit)"
code=$(https_get "$host" --cacert "$ca" --cert-type P12 --cert "$p12:changeit"); echo "HTTP $code"
[ "$code" = 200 ] || fail "want 200, got $code"

say "curl with a certificate from another CA: refused with 495"
mkdir -p other && CAROOT="$work/other-ca" mkcert -client -cert-file other/client.pem -key-file other/key.pem mallory@localhost.example >/dev/null 2>&1
code=$(https_get "$host" --cacert "$ca" --cert other/client.pem --key other/key.pem); echo "HTTP $code"; cat "$work/body"; echo
[ "$code" = 495 ] || fail "want 495, got $code"
grep -q '"detail":"unknown-authority"' "$work/body" || fail "the JSON should give the detail unknown-authority"

say "PASS: the downstream mTLS guide works end to end (files in $work)"
if [ -n "${KEEP_RUNNING:-}" ]; then
	echo "Import $work/$(basename "$p12") (password changeit) into your browser; see examples/downstream-mtls/README.md."
	echo "Ctrl-C stops everything."
	wait
fi
