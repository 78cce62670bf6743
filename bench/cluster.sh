#!/usr/bin/env bash
# bench/run.sh cluster: two caddy-iap instances sharing a real Redis
# (`storage redis`, github.com/pberkel/caddy-storage-redis), a third Caddy
# in front that round-robins between them, and Dex. Under load it checks
# and measures:
#
#   - a sign-in through the front (either instance) is good on both, and
#     both publish the same JWKS;
#   - sign-out through one: how long until the other refuses a copy of the
#     cookie (PROPAGATION_RUNS times: median and max);
#   - an admin revocation of the user on one (/iap/users/revoke): how long
#     until the other refuses;
#   - Redis stopped for OUTAGE seconds (default 30) under load, then
#     started again (empty: no persistence): errors seen by the load, a
#     revocation made during the outage (another user's) and when it
#     reaches the other instance;
#   - requests/s through the front with two instances and with one.
#
# Redis comes from Debian's redis-server, on loopback, started and stopped
# here. Results go to $work/cluster.md (printed at the end).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/caddy-iap-cluster.XXXXXX)}"
duration="${DURATION:-15}"
conns="${CONNECTIONS:-32}"
runs="${PROPAGATION_RUNS:-10}"
outage="${OUTAGE:-30}"
https_port=8450 # the front, round robin over both instances
one_port=8449   # the front, to instance A only
a_port=8451 b_port=8452
a_admin=127.0.0.1:2031 b_admin=127.0.0.1:2032
redis_port=6391 dex_port=5559 upstream_port=9091
redis_module=github.com/pberkel/caddy-storage-redis@v1.8.1
. "$root/examples/lib.sh"

need wrk redis-server:redis-server curl openssl
caddy="$root/bin/caddy-redis"
if ! "$caddy" list-modules 2>/dev/null | grep -q '^caddy.storage.redis$' || [ -n "${REBUILD:-}" ]; then
	say "building bin/caddy-redis (caddy-iap + $redis_module)"
	OUTPUT="$caddy" "$root/xcaddy.sh" --with "$redis_module"
fi
"$root/scripts/build-dex.sh"
(cd "$root" && go build -o "$work/signin" ./bench/signin)
cd "$work"

start_redis() {
	redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >>redis.log 2>&1 &
	redis_pid=$!
	pids+=("$redis_pid")
	wait_port "$redis_port" || fail "redis did not start: $(tail redis.log)"
}
say "Redis on :$redis_port"
start_redis

say "Dex on :$dex_port"
hash='$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W' # "password"
cat >dex.yaml <<EOF
issuer: http://127.0.0.1:$dex_port/dex
storage: {type: memory}
web: {http: 127.0.0.1:$dex_port}
oauth2: {skipApprovalScreen: true}
enablePasswordDB: true
staticClients:
- {id: bench, secret: bench-secret, name: bench, redirectURIs: ["https://bench.localhost:$https_port/.iap/callback", "https://bench.localhost:$one_port/.iap/callback"]}
staticPasswords:
- {email: alice@example.com, hash: "$hash", username: alice, userID: "1", groups: [admins, eng]}
- {email: bob@example.com, hash: "$hash", username: bob, userID: "2"}
EOF
"$root/bin/dex" serve dex.yaml >dex.log 2>&1 &
pids+=($!)
wait_port "$dex_port" || fail "Dex did not start"

secret=$(head -c32 /dev/urandom | base64)
instance() { # instance <name> <https port> <http port> <admin>
	cat >"$1.Caddyfile" <<EOF
{
	admin $4
	skip_install_trust
	local_certs
	https_port $2
	http_port $3
	storage redis {
		host 127.0.0.1
		port $redis_port
	}
	iap {
		idp {
			provider_url http://127.0.0.1:$dex_port/dex
			client_id bench
			client_secret bench-secret
			scopes openid email profile groups offline_access
		}
		cookie_secret $secret
	}
}
bench.localhost {
	tls internal
	iap_route {
		to http://127.0.0.1:$upstream_port
		allow_any_authenticated_user
	}
}
EOF
	(XDG_DATA_HOME="$work/$1/data" XDG_CONFIG_HOME="$work/$1/config" exec "$caddy" run --config "$1.Caddyfile" >"$1.log" 2>&1) &
	pids+=($!)
	wait_port "$2" || fail "instance $1 did not start: $(tail "$1.log")"
}
say "Instances A (:$a_port, admin $a_admin) and B (:$b_port, admin $b_admin), storage redis"
instance a "$a_port" 8091 "$a_admin"
instance b "$b_port" 8092 "$b_admin"

say "Front on :$https_port (round robin over A and B) and :$one_port (A only); upstream on :$upstream_port"
cat >front.Caddyfile <<EOF
{
	admin off
	skip_install_trust
	local_certs
	default_sni bench.localhost
	# wrk sends the IP it dials as SNI
	fallback_sni bench.localhost
	https_port $https_port
	http_port 8090
}
(to) {
	# An https upstream gets its own address as Host by default: keep the
	# client's, so that the instances' site and return URLs match.
	header_up Host {hostport}
	transport http {
		tls_insecure_skip_verify
		tls_server_name bench.localhost
	}
}
https://bench.localhost:$https_port {
	tls internal
	reverse_proxy https://127.0.0.1:$a_port https://127.0.0.1:$b_port {
		lb_policy round_robin
		import to
	}
}
https://bench.localhost:$one_port {
	tls internal
	reverse_proxy https://127.0.0.1:$a_port {
		import to
	}
}
http://127.0.0.1:$upstream_port {
	respond "hello from the upstream"
}
EOF
(XDG_DATA_HOME="$work/front/data" XDG_CONFIG_HOME="$work/front/config" exec "$caddy" run --config front.Caddyfile >front.log 2>&1) &
pids+=($!)
wait_port "$https_port" || fail "the front did not start: $(tail front.log)"

# get <port> <path> [curl args]: the status of https://bench.localhost:<port><path>.
get() {
	local port="$1" path="$2"
	shift 2
	curl -sk -o "$work/body" -w '%{http_code}' --resolve "bench.localhost:$port:127.0.0.1" "$@" "https://bench.localhost:$port$path"
}
signin() { # signin [email]: a session cookie, through the front (tried 5 times)
	local i
	for i in 1 2 3 4 5; do
		"$work/signin" -caddy "127.0.0.1:$https_port" -url "https://bench.localhost:$https_port/" \
			-user "${1:-alice@example.com}" -password password 2>>signin.log && return 0
		sleep 1
	done
	fail "sign-in through the front failed 5 times: $(tail -n1 signin.log)"
}
ms() { echo $(($(date +%s%N) / 1000000)); }
# refused_after <port> <cookie> <start ms>: polls until the instance answers
# 401 to the cookie and prints the milliseconds since start (60 s at most).
refused_after() {
	local now
	while :; do
		now=$(ms)
		[ "$(get "$1" / -H "Cookie: $2" -H 'Accept: application/json')" = 401 ] && break
		((now - $3 < 60000)) || fail "instance on :$1 still takes the revoked session after 60 s"
		sleep 0.02
	done
	echo $((now - $3))
}
stats() { sort -n | awk '{v[NR]=$1} END {printf "median %d ms, max %d ms (n=%d)", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[NR], NR}'; }

for _ in $(seq 50); do [ "$(get "$https_port" /.iap/healthz)" = 200 ] && break; sleep 0.2; done
say "Sign-in through the front"
cookie=$(signin)
for p in $a_port $b_port; do
	[ "$(get $p / -H "Cookie: $cookie")" = 200 ] || fail "the session made through the front is refused on :$p: $(cat body)"
done
jwks_a=$(curl -sk --resolve "bench.localhost:$a_port:127.0.0.1" "https://bench.localhost:$a_port/.well-known/iap/jwks.json")
jwks_b=$(curl -sk --resolve "bench.localhost:$b_port:127.0.0.1" "https://bench.localhost:$b_port/.well-known/iap/jwks.json")
[ -n "$jwks_a" ] && [ "$jwks_a" = "$jwks_b" ] || fail "A and B publish different JWKS"
echo "one session good on both instances; one JWKS: $(grep -o '"kid":"[^"]*"' <<<"$jwks_a")"

say "Requests/s through the front, $duration s each, $conns connections"
rps() { wrk -t2 -c"$conns" -d"${duration}s" -H "Host: bench.localhost" -H "Cookie: $cookie" "https://127.0.0.1:$1/" 2>&1 | tee "wrk-$1.txt" | awk '/Requests\/sec/ {print $2}'; }
rps_two=$(rps $https_port)
rps_one=$(rps $one_port)
echo "two instances: $rps_two req/s; one: $rps_one req/s"

# Background load for the drills below.
wrk -t1 -c8 -d600s -H "Host: bench.localhost" -H "Cookie: $cookie" "https://127.0.0.1:$https_port/" >wrk-load.txt 2>&1 &
load_pid=$!
pids+=($load_pid)

say "Sign-out on A, a copy of the cookie on B ($runs runs, under load)"
: >signout.ms
for _ in $(seq "$runs"); do
	c=$(signin)
	[ "$(get $a_port /.iap/sign_out -H "Cookie: $c" -H 'Accept: text/html')" = 200 ] || fail "sign-out page: $(cat body)"
	token=$(grep -o 'name="csrf_token" value="[^"]*"' body | sed 's/.*value="//; s/"$//')
	start=$(ms)
	code=$(get $a_port /.iap/sign_out -X POST -H "Cookie: $c" -H 'Sec-Fetch-Site: same-origin' --data-urlencode "csrf_token=$token")
	[ "$code" = 302 ] || fail "sign-out: $code $(cat body)"
	refused_after $b_port "$c" "$start" >>signout.ms
done
signout_stats=$(stats <signout.ms)
echo "sign-out on A to refused on B: $signout_stats"

say "Admin revocation of the user on B, a session on A ($runs runs, under load)"
: >revoke.ms
for _ in $(seq "$runs"); do
	c=$(signin)
	sleep 0.01
	start=$(ms)
	code=$(curl -s -o body -w '%{http_code}' -X POST "http://$b_admin/iap/users/revoke" -H 'Content-Type: application/json' -d '{"email": "alice@example.com"}')
	[ "$code" = 200 ] || fail "admin revoke: $code $(cat body)"
	refused_after $a_port "$c" "$start" >>revoke.ms
done
revoke_stats=$(stats <revoke.ms)
echo "admin revoke on B to refused on A: $revoke_stats"
cookie=$(signin) # the load's session was revoked with its user: a fresh one for the outage
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true

say "Redis stopped for $outage s under load, then started again"
wrk -t1 -c8 -d"$((outage + 20))s" --latency -H "Host: bench.localhost" -H "Cookie: $cookie" "https://127.0.0.1:$https_port/" >wrk-outage.txt 2>&1 &
load_pid=$!
pids+=($load_pid)
sleep 5
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
down_at=$(ms)
sleep 3
victim=$(signin bob@example.com 2>/dev/null || true) # a sign-in needs no storage: the cookie holds the session
[ -n "$victim" ] && [ "$(get $b_port / -H "Cookie: $victim")" = 200 ] || fail "no sign-in during the outage"
during=$(curl -s -o body -w '%{http_code}' -X POST "http://$a_admin/iap/users/revoke" -H 'Content-Type: application/json' -d '{"email": "bob@example.com"}')
during_a=$(get $a_port / -H "Cookie: $victim")
during_b=$(get $b_port / -H "Cookie: $victim")
sleep $((outage - 3))
start_redis
up_at=$(ms)
victim_ms=$(refused_after $b_port "$victim" "$up_at")
wait "$load_pid" || true
outage_total=$(awk '/requests in/ {print $1}' wrk-outage.txt)
outage_errors=$(awk '/Non-2xx/ {print $NF}' wrk-outage.txt)
outage_socket=$(grep -o 'Socket errors:.*' wrk-outage.txt || true)
logged_down=$(grep -c 'revocations: storage unreachable' a.log b.log | paste -sd' ')
logged_up=$(grep -c 'revocations: storage reachable again' a.log b.log | paste -sd' ')
echo "Redis down $(((up_at - down_at) / 1000)) s: ${outage_total:-?} requests, ${outage_errors:-0} non-2xx ${outage_socket}"
echo "a revocation on A during the outage: admin answered $during; A then answered $during_a, B $during_b (the list B had); B refused it ${victim_ms} ms after Redis came back"
echo "log lines 'storage unreachable' (a.log b.log counts): $logged_down; 'reachable again': $logged_up"

cat >cluster.md <<EOF
| measure | value |
| --- | --- |
| sign-out on A, copy of the cookie refused on B | $signout_stats |
| admin revoke of the user on B, session refused on A | $revoke_stats |
| requests/s through the front, two instances | $rps_two |
| requests/s through the front, one instance | $rps_one |
| Redis stopped ${outage} s under load (wrk -c8) | ${outage_total:-?} requests, ${outage_errors:-0} non-2xx ${outage_socket:-} |
| revocation on A during the outage | admin $during; A $during_a, B $during_b during the outage; B refused it ${victim_ms} ms after Redis came back |
EOF
say "Results ($work/cluster.md)"
cat cluster.md
