#!/usr/bin/env bash
# The caddy-iap quickstart, on loopback, from a fresh clone:
#
#   ./quickstart.sh             build everything, start the demo, print how to use it; Ctrl-C stops it all
#   ./quickstart.sh --check     the same, then try every scenario with curl and exit (the tests run this)
#   ./quickstart.sh --pomerium  the same demo from a Pomerium config.yaml (examples/pomerium/config.yaml,
#                               through `caddy run --adapter pomerium`); combines with --check
#
# It builds ./caddy (xcaddy.sh) and bin/dex (scripts/build-dex.sh), makes
# the demo's certificates with mkcert, and starts, each on 127.0.0.1 only:
#   - Dex, a real OpenID Connect provider, with two users, on 127.0.0.1:5556;
#   - openssl s_server -Verify 1, an upstream that requires a client
#     certificate, on 127.0.0.1:44330;
#   - Caddy with examples/quickstart/Caddyfile on 127.0.0.1:8443 (and 8080
#     for redirects; its admin endpoint on localhost:2019).
# Everything it writes goes to one scratch directory, removed on exit
# (Ctrl-C included) unless WORK=<dir> or KEEP_WORK=1.
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
check="" pomerium=""
for arg in "$@"; do
	case "$arg" in
	--check) check=1 ;;
	--pomerium) pomerium=1 ;;
	*) echo "usage: $0 [--check] [--pomerium]" >&2; exit 2 ;;
	esac
done
work="${WORK:-$(mktemp -d /tmp/caddy-iap-quickstart.XXXXXX)}"
https_port=8443
. "$root/examples/lib.sh"

need mkcert openssl curl
if [ ! -x "$root/caddy" ] || [ -n "${REBUILD:-}" ]; then
	say "Building ./caddy: Caddy v2.11.9 with caddy-iap, through xcaddy (about 2 minutes the first time on 2 cores, seconds once Go's cache is warm)"
	"$root/xcaddy.sh"
fi
if [ ! -x "$root/bin/dex" ] || [ "$root/tools/dex/go.mod" -nt "$root/bin/dex" ]; then
	say "Building bin/dex: Dex, the OpenID Connect provider of the demo (about 3.5 minutes the first time on 2 cores; once only)"
fi
"$root/scripts/build-dex.sh"

export CAROOT="$work/ca" CERTS="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config"
export IAP_CLIENT_SECRET="quickstart-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export IAP_COOKIE_SECRET="$(head -c32 /dev/urandom | base64)"
# The same secrets under Pomerium's names, for --pomerium.
export IDP_CLIENT_SECRET="$IAP_CLIENT_SECRET" COOKIE_SECRET="$IAP_COOKIE_SECRET"
cd "$work"

say "Certificates (mkcert, CA in $CAROOT)"
mkcert openssl.localhost >/dev/null 2>&1
mkcert -client -cert-file caddy-client.pem -key-file caddy-client-key.pem caddy@localhost >/dev/null 2>&1
mkcert -client -cert-file alice-device.pem -key-file alice-device-key.pem alice@example.com >/dev/null 2>&1
ls "$work"/*.pem

say "Dex on 127.0.0.1:5556 (users alice@example.com in group admins, bob@example.com; password: password)"
hash='$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W' # bcrypt of "password"
cat >dex.yaml <<DEX
issuer: http://127.0.0.1:5556/dex
storage: {type: memory}
web: {http: 127.0.0.1:5556}
oauth2: {skipApprovalScreen: true, passwordConnector: local}
enablePasswordDB: true
staticClients:
- id: caddy
  secret: $IAP_CLIENT_SECRET
  name: caddy-iap quickstart
  redirectURIs: ["https://app.localhost:$https_port/.iap/callback", "https://secure.localhost:$https_port/.iap/callback",
                 "https://app.localhost:$https_port/.pomerium/callback", "https://secure.localhost:$https_port/.pomerium/callback"]
staticPasswords:
- {email: alice@example.com, hash: "$hash", username: alice, name: Alice, userID: "1", groups: [admins, eng]}
- {email: bob@example.com, hash: "$hash", username: bob, name: Bob, userID: "2", groups: []}
DEX
"$root/bin/dex" serve dex.yaml >dex.log 2>&1 &
pids+=($!)
wait_port 5556 || fail "Dex did not start: $(cat dex.log)"

say "openssl s_server -Verify 1 on 127.0.0.1:44330 (requires a client certificate)"
openssl s_server -Verify 1 -verifyCAfile "$CAROOT/rootCA.pem" -verify_return_error \
	-key openssl.localhost-key.pem -cert openssl.localhost.pem -accept 127.0.0.1:44330 -www >s_server.log 2>&1 &
pids+=($!)
wait_port 44330 || fail "s_server did not start: $(cat s_server.log)"

if [ -n "$pomerium" ]; then
	# Relative paths in config.yaml are the certificates in $work.
	start_caddy "$root/examples/pomerium/config.yaml" pomerium
else
	start_caddy "$root/examples/quickstart/Caddyfile"
fi
caddy_root="$XDG_DATA_HOME/caddy/pki/authorities/local/root.crt"
for _ in $(seq 50); do [ -s "$caddy_root" ] && break; sleep 0.1; done

token() { # an ID token from Dex's password grant, as API clients use
	curl -s -u "caddy:$IAP_CLIENT_SECRET" -d grant_type=password -d username="$1" -d password=password \
		-d scope="openid email profile groups" http://127.0.0.1:5556/dex/token |
		sed -n 's/.*"id_token":"\([^"]*\)".*/\1/p'
}

endpoints=.iap
[ -z "$pomerium" ] || endpoints=.pomerium # the adapter sets compat pomerium
cat <<INFO

caddy-iap quickstart is up (files in $work).

  https://app.localhost:$https_port/      admins only; sign in as alice@example.com / password (bob@example.com is refused)
  https://app.localhost:$https_port/$endpoints/ who you are, and a sign-out button
  https://secure.localhost:$https_port/   any signed-in user with a device certificate (import $work/alice-device.p12, password changeit)

  Caddy's local CA, to trust in a browser or pass to curl: $caddy_root

Try with curl:
  curl --cacert $caddy_root https://app.localhost:$https_port/                      # 401: sign in first
  TOKEN=\$(curl -s -u caddy:$IAP_CLIENT_SECRET -d grant_type=password -d username=alice@example.com -d password=password -d scope='openid email groups' http://127.0.0.1:5556/dex/token | sed -n 's/.*"id_token":"\\([^"]*\\)".*/\\1/p')
  curl --cacert $caddy_root -H "Authorization: Bearer \$TOKEN" https://app.localhost:$https_port/     # 200: s_server's page, with Caddy's client certificate
  curl --cacert $caddy_root -H "Authorization: Bearer \$TOKEN" https://secure.localhost:$https_port/  # 495: no device certificate
  curl --cacert $caddy_root -H "Authorization: Bearer \$TOKEN" --cert $work/alice-device.pem --key $work/alice-device-key.pem https://secure.localhost:$https_port/  # 200
INFO
openssl pkcs12 -export -in alice-device.pem -inkey alice-device-key.pem -out alice-device.p12 -passout pass:changeit 2>/dev/null

if [ -n "$check" ]; then
	say "Checking that everything listens on loopback only (ss -ltnp)"
	need ss:iproute2
	listeners=$(ss -Hltnp | grep -E "pid=($(IFS='|'; echo "${pids[*]}"))," || true)
	echo "$listeners" | awk '{print "  " $4, $6}'
	[ -n "$listeners" ] || fail "ss shows no listener of Dex, s_server or Caddy"
	if echo "$listeners" | awk '{print $4}' | grep -vqE '^(127\.[0-9.]+|\[::1\]):[0-9]+$'; then
		fail "something listens beyond loopback: $listeners"
	fi

	say "Checking every scenario"
	c=(curl -s -o "$work/body" -w '%{http_code}' --cacert "$caddy_root")
	expect() { # expect <code> <what> <curl args...>
		local want="$1" what="$2" got
		shift 2
		for _ in $(seq 50); do got=$("${c[@]}" "$@" 2>/dev/null) && [ "$got" != 000 ] && break; sleep 0.2; done
		printf '%-70s %s\n' "$what" "$got"
		[ "$got" = "$want" ] || fail "$what: want $want, got $got: $(head -c 300 "$work/body")"
	}
	alice=$(token alice@example.com)
	bob=$(token bob@example.com)
	[ -n "$alice" ] && [ -n "$bob" ] || fail "no ID token from Dex: $(tail -5 dex.log)"
	expect 401 "app: no session" "https://app.localhost:$https_port/"
	expect 302 "app: a browser is sent to sign in" -H "Accept: text/html" "https://app.localhost:$https_port/"
	expect 200 "app: alice (admins), through mTLS to s_server" -H "Authorization: Bearer $alice" "https://app.localhost:$https_port/"
	grep -q "Client certificate" "$work/body" || fail "s_server did not see Caddy's client certificate"
	expect 403 "app: bob (not an admin)" -H "Authorization: Bearer $bob" "https://app.localhost:$https_port/"
	expect 495 "secure: no device certificate" -H "Authorization: Bearer $alice" "https://secure.localhost:$https_port/"
	expect 200 "secure: alice's device certificate (PEM)" -H "Authorization: Bearer $alice" --cert alice-device.pem --key alice-device-key.pem "https://secure.localhost:$https_port/"
	expect 200 "secure: the same as PKCS#12" -H "Authorization: Bearer $alice" --cert-type P12 --cert alice-device.p12:changeit "https://secure.localhost:$https_port/"
	say "PASS: the quickstart works"
	exit 0
fi

echo
echo "Ctrl-C stops Dex, s_server and Caddy."
wait
