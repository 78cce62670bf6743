#!/usr/bin/env bash
# Measures caddy-iap side by side with plain Caddy, in one run, on loopback:
#
#   bench/run.sh                 # 15 s per contender
#   DURATION=60 bench/run.sh     # longer runs
#   bench/run.sh soak            # drill: 200 connections for 10 minutes on the signed-in mTLS route
#   bench/run.sh reload          # drill: caddy reload every 2 s for a minute under load
#   bench/run.sh idp-down        # drill: Dex stopped under load, then started again
#   bench/run.sh rotate          # drill: the upstream client certificate replaced on disk under load
#   bench/run.sh cluster         # drill: two instances sharing Redis behind a round-robin Caddy: sign-in, sign-out and revocation across them, Redis stopped 30 s (bench/cluster.sh)
#   bench/run.sh crl-rotate      # drill: iap_mtls ca_file and crl_file replaced under load, a client revoked halfway (bench/crl-rotate.sh)
#   bench/run.sh pomerium        # a Pomerium config.yaml's defaults (access and authorize logs, headers) and otel tracing to Jaeger, beside plain Caddy (bench/pomerium.sh)
#   bench/run.sh keys            # drill: the signing key and the cookie secret rotated by reload under load
#   bench/run.sh profile         # a CPU profile of Caddy under load on PROFILE_PATH (default /signed)
#   bench/run.sh serve           # start everything and wait, to try routes by hand
#
# It builds ./caddy (xcaddy.sh), bin/dex, bin/oauth2-proxy and
# bin/caddy-security (Caddy with greenpau/caddy-security, for contender 5, in
# its own process on :8446), installs wrk, gnuplot and
# mkcert from Debian when missing, starts an upstream (Caddy `respond`, plain
# and mTLS) in its own process, Dex, and the Caddy under test, then drives
# each contender with wrk and prints a markdown table: requests/s, p50, p99,
# CPU per request of the Caddy under test, and each ratio to plain Caddy. The
# table and a plot go to bench/results.md and bench/results.png.
set -euo pipefail
mode="${1:-bench}"
[ "$mode" != crl-rotate ] || exec "$(dirname "$0")/crl-rotate.sh"
[ "$mode" != cluster ] || exec "$(dirname "$0")/cluster.sh"
[ "$mode" != pomerium ] || exec "$(dirname "$0")/pomerium.sh"
# The soak and profile drills leave their results in the work directory.
case "$mode" in soak | profile) KEEP_WORK="${KEEP_WORK:-1}" ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/caddy-iap-bench.XXXXXX)}"
duration="${DURATION:-15}"
conns="${CONNECTIONS:-64}"
https_port=8443
cs_port=8446 # contender 5, caddy-security, in its own Caddy process
cs_version=v1.1.64
. "$root/examples/lib.sh"

need wrk gnuplot:gnuplot-nox mkcert openssl curl
[ -x "$root/caddy" ] && [ -z "${REBUILD:-}" ] || "$root/xcaddy.sh"
"$root/scripts/build-dex.sh"
if [ ! -x "$root/bin/oauth2-proxy" ] || [ "$root/tools/oauth2-proxy/go.mod" -nt "$root/bin/oauth2-proxy" ]; then
	say "building oauth2-proxy (tools/oauth2-proxy)"
	(cd "$root/tools/oauth2-proxy" && go build -o ../../bin/oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7)
fi
# Contender 5: the same Caddy version with caddy-security instead of
# caddy-iap, built with the xcaddy pinned in tools/xcaddy. A failed build
# does not stop the run: row 5 then says why.
cs_skip=""
if [ "$mode" = bench ] && ! grep -qE "greenpau/caddy-security\s+$cs_version\s" <<<"$("$root/bin/caddy-security" build-info 2>/dev/null)"; then
	say "building bin/caddy-security (Caddy v2.11.9 + caddy-security $cs_version, about 3 minutes)"
	(cd "$root/tools/xcaddy" && go tool xcaddy build v2.11.9 --output "$root/bin/caddy-security" \
		--with "github.com/greenpau/caddy-security@$cs_version") >"$work/caddy-security-build.log" 2>&1 ||
		cs_skip="the build failed: $(grep -m1 -iE 'error|refused|not available' "$work/caddy-security-build.log" | sed 's/^[[:space:]]*//' || tail -n1 "$work/caddy-security-build.log")"
fi
cd "$work"
export CAROOT="$work/ca" CERTS="$work"

say "Certificates"
mkcert openssl.localhost >/dev/null 2>&1
mkcert -client -cert-file caddy-client.pem -key-file caddy-client-key.pem caddy@localhost >/dev/null 2>&1
mkcert -client -ecdsa -cert-file device.pem -key-file device-key.pem device@localhost >/dev/null 2>&1

say "Upstream: Caddy respond, plain on :9080 and mTLS on :9443 (its own process)"
cat >upstream.Caddyfile <<EOF
{
	admin off
	auto_https off
	# The proxy verifies this upstream as openssl.localhost (SNI) but sends
	# Host localhost:9443; client_auth would otherwise make Caddy refuse the
	# mismatch (421).
	servers :9443 {
		strict_sni_host insecure_off
	}
}
# Any Host: plain reverse_proxy passes the client's, iap_route sends the
# upstream's own, and both must get the body.
:9080 {
	bind 127.0.0.1
	respond "hello from the upstream"
}
# The proxy's SNI is openssl.localhost: that name must be a site address,
# or its handshakes fall to a connection policy without client_auth.
https://localhost:9443, https://openssl.localhost:9443 {
	tls $work/openssl.localhost.pem $work/openssl.localhost-key.pem {
		client_auth {
			mode require_and_verify
			trust_pool file $CAROOT/rootCA.pem
		}
	}
	# the rotate drill asks which client certificate the proxy presented
	respond /rotate "{http.request.tls.client.san.emails.0}"
	respond "hello from the mTLS upstream"
}
EOF
XDG_DATA_HOME="$work/up-data" "$caddy" run --adapter caddyfile --config upstream.Caddyfile >upstream.log 2>&1 &
pids+=($!)
wait_port 9080 && wait_port 9443 || fail "upstream did not start: $(cat upstream.log)"

say "Dex on :5557"
hash='$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W' # "password"
cat >dex.yaml <<EOF
issuer: http://127.0.0.1:5557/dex
storage: {type: memory}
web: {http: 127.0.0.1:5557}
oauth2: {skipApprovalScreen: true}
enablePasswordDB: true
staticClients:
- {id: bench, secret: bench-secret, name: bench, redirectURIs: ["https://bench.localhost:$https_port/.iap/callback"]}
- {id: o2p, secret: o2p-secret, name: oauth2-proxy, redirectURIs: ["https://bench.localhost:$https_port/oauth2/callback"]}
- {id: caddy-security, secret: cs-secret, name: caddy-security, redirectURIs: ["https://bench.localhost:$cs_port/auth/oauth2/dex/authorization-code-callback"]}
staticPasswords:
- {email: alice@example.com, hash: "$hash", username: alice, userID: "1", groups: [admins, eng]}
EOF
"$root/bin/dex" serve dex.yaml >dex.log 2>&1 &
dex_pid=$!
pids+=($dex_pid)
wait_port 5557 || fail "Dex did not start"

say "oauth2-proxy on :4180 (contender 6, behind Caddy's forward_auth)"
"$root/bin/oauth2-proxy" --provider=oidc --oidc-issuer-url=http://127.0.0.1:5557/dex --client-id=o2p --client-secret=o2p-secret \
	--cookie-secret="$(head -c32 /dev/urandom | base64 | tr '+/' '-_' | head -c32)" --email-domain='*' --http-address=127.0.0.1:4180 \
	--upstream=static://202 --reverse-proxy --redirect-url="https://bench.localhost:$https_port/oauth2/callback" \
	--scope="openid email profile groups" --set-xauthrequest --skip-provider-button --approval-prompt=auto >oauth2-proxy.log 2>&1 &
o2p_pid=$!
pids+=($o2p_pid)
wait_port 4180 || fail "oauth2-proxy did not start: $(tail oauth2-proxy.log)"

# The ten-rule policy of authz's BenchmarkTenRules; alice is allowed by the
# last rule, so every rule is evaluated.
policy='policy {
				allow {
					or {
						email is ceo@example.com
						claim/department has finance
						user in u-1 u-2 u-3
						email ends_with @ops.example
					}
					and {
						domain is partner.example
						http_method in GET HEAD
					}
					and {
						groups has admins
						domain is example.com
					}
				}
				deny {
					or {
						http_method is DELETE
					}
					and {
						http_path starts_with /nowhere
						groups exclude admins
					}
				}
			}'
# The mTLS upstream as (4) and the rotate drill reach it.
mtls_upstream="to https://localhost:9443
			tls_upstream_server_name openssl.localhost
			tls_custom_ca_file $CAROOT/rootCA.pem
			tls_client_cert_file $work/caddy-client.pem
			tls_client_key_file $work/caddy-client-key.pem"
cat >bench.Caddyfile <<EOF
{
	admin 127.0.0.1:2999
	http_port 8080
	https_port $https_port
	skip_install_trust
	default_sni bench.localhost
	# wrk sends the IP it dials as SNI
	fallback_sni bench.localhost
	iap {
		idp {
			provider_url http://127.0.0.1:5557/dex
			client_id bench
			client_secret bench-secret
			scopes openid email profile groups
		}
		cookie_secret $(head -c32 /dev/urandom | base64)
		jwt_claims_headers X-Email=email
	}
}
bench.localhost {
	handle /.iap/* {
		iap_authenticate
	}
	# the JWKS, for upstreams that verify the assertion (the keys drill's)
	handle /.well-known/iap/* {
		iap_authenticate
	}
	# 1. plain Caddy reverse_proxy: the limit
	handle /plain* {
		reverse_proxy 127.0.0.1:9080
	}
	# 1c. plain Caddy reverse_proxy that adds headers of the size of the
	# identity (the real assertion, put here after sign-in, and X-Email):
	# the limit for (3), Caddy's own cost of carrying them included
	handle /limit* {
		reverse_proxy 127.0.0.1:9080 {
			header_up X-Iap-Jwt-Assertion "__ASSERTION__"
			header_up X-Email alice@example.com
		}
	}
	# 1b. plain Caddy reverse_proxy to the mTLS upstream: the limit for (4)
	handle /direct-mtls* {
		reverse_proxy https://localhost:9443 {
			transport http {
				tls_server_name openssl.localhost
				tls_trust_pool file $CAROOT/rootCA.pem
				tls_client_auth $work/caddy-client.pem $work/caddy-client-key.pem
			}
		}
	}
	# 2. iap_route, public
	handle /public* {
		iap_route {
			to http://127.0.0.1:9080
			allow_public_unauthenticated_access
		}
	}
	# 3. iap_route, signed-in session, ten-rule policy, identity assertion
	handle /signed* {
		iap_route {
			to http://127.0.0.1:9080
			$policy
		}
	}
	# 6. oauth2-proxy behind forward_auth, the same upstream
	handle /oauth2/* {
		reverse_proxy 127.0.0.1:4180
	}
	handle /o2p* {
		forward_auth 127.0.0.1:4180 {
			uri /oauth2/auth
			copy_headers X-Auth-Request-User X-Auth-Request-Email
		}
		reverse_proxy 127.0.0.1:9080
	}
	# 4. the same plus upstream mTLS
	handle /mtls* {
		iap_route {
			$mtls_upstream
			$policy
		}
	}
	# the keys drill: bench/keys serves this upstream and verifies every
	# assertion against the JWKS
	handle /keys* {
		iap_route {
			to http://127.0.0.1:9091
			allow_any_authenticated_user
		}
	}
	# the rotate drill: the same client certificate files, a new upstream
	# connection per request
	handle /rotate* {
		iap_route {
			$mtls_upstream
			allow_any_authenticated_user
			transport http {
				keepalive off
			}
		}
	}
}
# 7. TLS handshakes with and without a client certificate
https://tls.localhost:8444 {
	respond "tls"
}
https://mtls.localhost:8445 {
	iap_mtls {
		ca_file $CAROOT/rootCA.pem
		enforcement reject_connection
	}
	respond "mtls"
}
# 7b. Caddy's own client_auth, no plugin: what mTLS costs in Caddy itself
https://native.localhost:8447 {
	tls {
		client_auth {
			mode require_and_verify
			trust_pool file $CAROOT/rootCA.pem
		}
	}
	respond "native"
}
EOF
XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" "$caddy" run --adapter caddyfile --config bench.Caddyfile >caddy.log 2>&1 &
caddy_pid=$!
pids+=($caddy_pid)
wait_port $https_port || fail "caddy did not start: $(tail caddy.log)"
for _ in $(seq 100); do curl -sk -o /dev/null --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/plain" && break; sleep 0.1; done

say "Signing alice in through Dex"
cookie=$(cd "$root" && go run ./bench/signin -caddy "127.0.0.1:$https_port" -url "https://bench.localhost:$https_port/signed/" -user alice@example.com -password password)
# Row 1c carries a header of exactly the assertion's size: the real one.
assertion=$(curl -sk -H "Cookie: $cookie" -H "Accept: application/json" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/.iap/jwt")
[ "${#assertion}" -gt 100 ] || fail "/.iap/jwt with the session: '$assertion'"
sed -i "s|__ASSERTION__|$assertion|" bench.Caddyfile
XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" "$caddy" reload --adapter caddyfile --config bench.Caddyfile --address 127.0.0.1:2999 >>caddy.log 2>&1 ||
	fail "caddy reload with the assertion-sized header: $(tail caddy.log)"
say "Row 1c adds a ${#assertion}-byte X-Iap-Jwt-Assertion and X-Email"
# Each route must reach the upstream's body, not just answer 200.
for p in plain limit direct-mtls public signed mtls; do
	body=$(curl -sk -H "Cookie: $cookie" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/$p")
	case "$body" in "hello from the"*) ;; *) fail "/$p with the session: '$body'" ;; esac
done
o2p_cookie=$(cd "$root" && go run ./bench/signin -caddy "127.0.0.1:$https_port" -url "https://bench.localhost:$https_port/oauth2/start?rd=/o2p" \
	-user alice@example.com -password password -cookie-prefix _oauth2_proxy)
body=$(curl -sk -H "Cookie: $o2p_cookie" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/o2p")
case "$body" in "hello from the"*) ;; *) fail "/o2p with oauth2-proxy's session: '$body'" ;; esac

# CPU of the Caddy process that serves the contender (./caddy, or
# caddy-security's for contender 5) at $port, plus the contender's own
# process when it has one (oauth2-proxy for contender 6).
measured_pid=$caddy_pid
port=$https_port
extra_pid=""
cpu_ticks() {
	local t
	t=$(awk '{print $14 + $15}' "/proc/$measured_pid/stat")
	[ -z "$extra_pid" ] || t=$((t + $(awk '{print $14 + $15}' "/proc/$extra_pid/stat")))
	echo "$t"
}
hz=$(getconf CLK_TCK)

# run <name> <path> [wrk args]: one contender; appends a row to rows.tsv.
run() {
	local name="$1" path="$2"
	shift 2
	say "$name: wrk -t2 -c$conns -d${duration}s https://bench.localhost:$port$path"
	local c0 c1 out="wrk${path//\//-}.txt"
	c0=$(cpu_ticks)
	wrk -t2 -c"$conns" -d"${duration}s" --latency -H "Host: bench.localhost" "$@" "https://127.0.0.1:$port$path" >"$out" 2>&1 || true
	c1=$(cpu_ticks)
	local rps p50 p99 total errors
	rps=$(awk '/Requests\/sec/ {print $2}' "$out")
	p50=$(awk '$1=="50%" {print $2}' "$out")
	p99=$(awk '$1=="99%" {print $2}' "$out")
	total=$(awk '/requests in/ {print $1}' "$out")
	errors=$(awk '/Non-2xx|Socket errors/ {print}' "$out" | tr '\n' ' ')
	local cpu_us
	cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$total" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" "$cpu_us" "$errors" >>rows.tsv
	tail -n 12 "$out"
}
if [ "$mode" != bench ]; then
	. "$root/bench/drills.sh"
	exit 0
fi

# Contender 5: caddy-security's portal signs alice in through the same Dex
# and issues its JWT cookie (AUTHP_ACCESS_TOKEN, HS512, a shared key);
# `authorize` verifies it, evaluates ACL rules comparable to the ten-rule
# policy (alice is allowed only by the last one, so every rule is tried),
# injects her email as a header and proxies to the same upstream.
cs_secret=$(openssl rand -hex 32)
cat >cs.Caddyfile <<EOF
{
	admin off
	http_port 8081
	https_port $cs_port
	skip_install_trust
	default_sni bench.localhost
	fallback_sni bench.localhost
	security {
		oauth identity provider dex {
			realm dex
			driver generic
			client_id caddy-security
			client_secret cs-secret
			scopes openid email profile groups
			base_auth_url http://127.0.0.1:5557/dex
			metadata_url http://127.0.0.1:5557/dex/.well-known/openid-configuration
		}
		authentication portal benchportal {
			crypto default token lifetime 3600
			crypto key sign-verify $cs_secret
			enable identity provider dex
			# the portal's own pages admit only its authp/* roles
			transform user {
				match realm dex
				action add role authp/user
			}
		}
		authorization policy benchpolicy {
			set auth url /auth
			set access_token cookie name AUTHP_ACCESS_TOKEN
			crypto key verify $cs_secret
			# deny DELETE; also puts method and path into the ACL's input
			deny roles any with delete to /
			acl rule {
				prefix match path /nowhere
				no match roles admins
				deny stop
			}
			acl rule {
				match email ceo@example.com
				allow stop
			}
			acl rule {
				match roles finance
				allow stop
			}
			acl rule {
				match sub u-1 u-2 u-3
				allow stop
			}
			acl rule {
				suffix match email @ops.example
				allow stop
			}
			acl rule {
				suffix match email @partner.example
				match method GET HEAD
				allow stop
			}
			# alice: Dex's groups claim becomes her roles
			acl rule {
				match roles admins
				suffix match email @example.com
				allow stop
			}
			inject header "X-Email" from email
		}
	}
}
bench.localhost {
	route /auth* {
		authenticate with benchportal
	}
	route /cs* {
		authorize with benchpolicy
		reverse_proxy 127.0.0.1:9080
	}
}
EOF
cs_pid=""
if [ -z "$cs_skip" ]; then
	say "caddy-security on :$cs_port (contender 5, its own Caddy process)"
	XDG_DATA_HOME="$work/cs-data" XDG_CONFIG_HOME="$work/cs-config" "$root/bin/caddy-security" run --adapter caddyfile --config cs.Caddyfile >cs.log 2>&1 &
	cs_pid=$!
	pids+=("$cs_pid")
	wait_port $cs_port || fail "caddy-security did not start: $(tail cs.log)"
	say "Signing alice in through caddy-security's portal and Dex"
	cs_cookie=$(cd "$root" && go run ./bench/signin -caddy "127.0.0.1:$cs_port" -url "https://bench.localhost:$cs_port/auth/oauth2/dex" \
		-user alice@example.com -password password -cookie-prefix AUTHP_ACCESS_TOKEN)
	code=$(curl -sk -o /dev/null -w '%{http_code}' --resolve "bench.localhost:$cs_port:127.0.0.1" "https://bench.localhost:$cs_port/cs")
	case "$code" in 30[1237] | 401 | 403) ;; *) fail "/cs without caddy-security's cookie: $code" ;; esac
	body=$(curl -sk -H "Cookie: $cs_cookie" --resolve "bench.localhost:$cs_port:127.0.0.1" "https://bench.localhost:$cs_port/cs")
	case "$body" in "hello from the"*) ;; *) fail "/cs with caddy-security's cookie: '$body'" ;; esac
	code=$(curl -sk -o /dev/null -w '%{http_code}' -X DELETE -H "Cookie: $cs_cookie" --resolve "bench.localhost:$cs_port:127.0.0.1" "https://bench.localhost:$cs_port/cs")
	[ "$code" = 403 ] || fail "DELETE /cs with caddy-security's cookie, denied by the first ACL rule: $code"
fi

: >rows.tsv
run "1. plain Caddy reverse_proxy" /plain
run "1c. plain reverse_proxy + header_up of the assertion's size" /limit
run "2. iap_route, public" /public
run "3. iap_route, signed in, 10-rule policy, assertion" /signed -H "Cookie: $cookie"
run "4. the same plus upstream mTLS" /mtls -H "Cookie: $cookie"
run "1b. plain Caddy reverse_proxy to the mTLS upstream" /direct-mtls
if [ -n "$cs_pid" ]; then
	measured_pid=$cs_pid port=$cs_port
	run "5. caddy-security, JWT cookie, 8 ACL rules, header" /cs -H "Cookie: $cs_cookie"
	measured_pid=$caddy_pid port=$https_port
fi
extra_pid=$o2p_pid
run "6. oauth2-proxy behind forward_auth" /o2p -H "Cookie: $o2p_cookie"
extra_pid=""

say "7. TLS handshakes: bench/handshake, ${duration}s each"
hs() { # hs <port> <sni> [flags]: "<handshakes/s> <server CPU us per handshake>"
	(cd "$root" && go run ./bench/handshake -addr "127.0.0.1:$1" -sni "$2" -duration "${duration}s" -pid "$caddy_pid" "${@:3}") | tee -a handshake.txt | awk '{print $1, $(NF-1)}'
}
dev=(-cert "$work/device.pem" -key "$work/device-key.pem")
read -r tls_new tls_cpu < <(hs 8444 tls.localhost)
read -r native_new native_cpu < <(hs 8447 native.localhost "${dev[@]}")
read -r mtls_new mtls_cpu < <(hs 8445 mtls.localhost "${dev[@]}")
read -r tls_reuse tls_reuse_cpu < <(hs 8444 tls.localhost -resume)
cat handshake.txt

say "Results"
# The table's order: 1, 1b, 1c, 2, ... whatever order the contenders ran in.
awk -F'\t' '{ s = $1; sub(/^[0-9]+/, "", s); l = substr(s, 1, 1); if (l == ".") l = ""; printf "%03d%s\t%s\n", $1 + 0, l, $0 }' rows.tsv |
	sort -k1,1 | cut -f2- >rows.sorted && mv rows.sorted rows.tsv
base_rps=$(awk -F'\t' 'NR==1 {print $2}' rows.tsv)
base_p99=$(awk -F'\t' 'NR==1 {print $4}' rows.tsv)
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else if (v ~ /s$/) { sub(/s/, "", v); print v * 1000 } else print v }'; }
{
	echo "| contender | requests/s | p50 | p99 | CPU per request | requests/s vs plain | p99 vs plain | errors |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
	while IFS=$'\t' read -r name rps p50 p99 cpu errors; do
		printf '| %s | %.0f | %s | %s | %s us | %.2fx | %.2fx | %s |\n' "$name" "$rps" "$p50" "$p99" "$cpu" \
			"$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { print a / b }')" \
			"$(awk -v a="$(ms "$p99")" -v b="$(ms "$base_p99")" 'BEGIN { print a / b }')" "${errors:-none}"
	done <rows.tsv
	[ -z "$cs_skip" ] || echo "| 5. caddy-security $cs_version | not run | | | | | | $cs_skip |"
	awk -F'\t' '$1 ~ /^3\./ { r3 = $2; c3 = $5 } $1 ~ /^5\./ { r5 = $2; c5 = $5 } $1 ~ /^4\./ { r4 = $2; c4 = $5 } $1 ~ /^1b\./ { r1b = $2; c1b = $5 } $1 ~ /^1c\./ { r1c = $2; c1c = $5 }
		END {
			print ""
			if (r1c) printf "caddy-iap (3) vs plain reverse_proxy carrying the same headers (1c): %.2fx the requests/s, %+.1f us of CPU per request (target: at least 0.96x, at most +5 us)\n\n", r3 / r1c, c3 - c1c
			if (r5) printf "caddy-iap (3) vs caddy-security (5): %.2fx the requests/s, %.2fx the CPU per request\n\n", r3 / r5, c3 / c5
			if (r1b) printf "caddy-iap with upstream mTLS (4) vs plain reverse_proxy to the same mTLS upstream (1b): %.2fx the requests/s, %.2fx the CPU per request\n", r4 / r1b, c4 / c1b
		}' rows.tsv
	echo
	echo "| 7. TLS handshakes (bench/handshake, TLS 1.3, 8 clients) | handshakes/s | server CPU per handshake | vs plain TLS |"
	echo "| --- | ---: | ---: | ---: |"
	hsrow() { printf '| %s | %s | %s us | %s |\n' "$1" "${2:-?}" "${3:-?}" "$(awk -v a="${2:-0}" -v b="${tls_new:-1}" 'BEGIN { printf "%.2fx", a / b }')"; }
	hsrow "plain TLS, new" "$tls_new" "$tls_cpu"
	hsrow "Caddy client_auth require_and_verify (no plugin), new" "$native_new" "$native_cpu"
	hsrow "iap_mtls reject_connection, new" "$mtls_new" "$mtls_cpu"
	hsrow "plain TLS, resumed" "$tls_reuse" "$tls_reuse_cpu"
	echo "| client certificate, resumed | n/a | | Caddy turns session tickets off on connection policies with client_authentication |"
	echo
	echo "Measured on $(date -u +%Y-%m-%d), $(nproc) cores $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME")"
} | tee "$root/bench/results.md"

# The plot: bench/plot.sh draws it from results.md, so a plot can be drawn
# again (new labels, another size) without a new run.
"$root/bench/plot.sh" "$root/bench/results.md" "$root/bench/results.png"
say "Wrote bench/results.md and bench/results.png (work files in $work are removed on exit; KEEP_WORK=1 keeps them)"
