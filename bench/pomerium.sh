#!/usr/bin/env bash
# What a Pomerium config.yaml run unchanged costs per request, side by side
# with plain Caddy, in one run, on loopback (bench/run.sh pomerium):
#
#   1.  plain Caddy reverse_proxy, no access log (Caddy's default)
#   1b. plain Caddy reverse_proxy with Caddy's access log to a file
#   2.  --adapter pomerium, a public route: Pomerium's defaults (the access
#       log with access_log_fields' defaults, one "authorize check" line per
#       request with authorize_log_fields' defaults, the default response
#       headers, the upstream's X-Request-Id), logs to a file
#   3.  the same with otel_* tracing every request to a real Jaeger over
#       OTLP/HTTP
#
# Each contender is its own Caddy process on :8443, run alone in turn,
# with the same upstream (Caddy respond on :9080, its own process), driven
# by wrk (2 threads, $CONNECTIONS connections, $DURATION s). CPU per request
# is the Caddy process's user+system time over the requests it served.
# Prints a markdown table. Needs ./caddy (xcaddy.sh), bin/jaeger
# (scripts/build-jaeger.sh), wrk and mkcert (installed when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/caddy-iap-bench-pomerium.XXXXXX)}"
duration="${DURATION:-15}"
conns="${CONNECTIONS:-64}"
https_port=8443
. "$root/examples/lib.sh"

need wrk mkcert
[ -x "$root/caddy" ] && [ -z "${REBUILD:-}" ] || "$root/xcaddy.sh"
"$root/scripts/build-jaeger.sh"
cd "$work"
export CAROOT="$work/ca"
mkcert -cert-file bench.pem -key-file bench-key.pem bench.localhost 127.0.0.1 >/dev/null 2>&1

say "Upstream: Caddy respond on :9080 (its own process)"
printf '{\n\tadmin off\n\tauto_https off\n}\n:9080 {\n\tbind 127.0.0.1\n\trespond "hello from the upstream"\n}\n' >upstream.Caddyfile
XDG_DATA_HOME="$work/up-data" "$caddy" run --adapter caddyfile --config upstream.Caddyfile >upstream.log 2>&1 &
pids+=($!)
wait_port 9080 || fail "upstream did not start: $(cat upstream.log)"

say "Jaeger: OTLP/HTTP on :4318"
"$root/bin/jaeger" >jaeger.log 2>&1 &
pids+=($!)
wait_port 4318 || fail "Jaeger did not start: $(tail jaeger.log)"

cat >plain.Caddyfile <<EOF
{
	admin off
	https_port $https_port
	auto_https disable_redirects
}
bench.localhost {
	tls $work/bench.pem $work/bench-key.pem
	reverse_proxy 127.0.0.1:9080
}
EOF
cat >plain-log.Caddyfile <<EOF
{
	admin off
	https_port $https_port
	auto_https disable_redirects
}
bench.localhost {
	tls $work/bench.pem $work/bench-key.pem
	log {
		output file $work/plain-access.log
	}
	reverse_proxy 127.0.0.1:9080
}
EOF
pomerium_config() {
	cat <<EOF
address: :$https_port
certificate_file: $work/bench.pem
certificate_key_file: $work/bench-key.pem
routes:
  - from: https://bench.localhost
    to: http://127.0.0.1:9080
    allow_public_unauthenticated_access: true
EOF
}
pomerium_config >pomerium.yaml
{
	pomerium_config
	printf 'otel_traces_exporter: otlp\notel_exporter_otlp_traces_endpoint: http://127.0.0.1:4318/v1/traces\notel_traces_sampler_arg: 1\notel_resource_attributes: service.name=caddy-iap-bench\n'
} >pomerium-otel.yaml

printf 'contender\trequests/s\tp50\tp99\tCPU per request\n' >rows.tsv
# run <name> <config> <adapter>: starts Caddy on the config alone, drives
# it, stops it, and appends a row.
run() {
	local name="$1" config="$2" adapter="$3" out t0 t1 reqs
	say "$name: caddy run --adapter $adapter --config $config"
	(cd "$work" && XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" \
		exec "$caddy" run --adapter "$adapter" --config "$config" >"$work/caddy-$adapter.log" 2>&1) &
	caddy_pid=$!
	pids+=("$caddy_pid")
	wait_port "$https_port" || fail "caddy did not start: $(tail "$work/caddy-$adapter.log")"
	curl -sf --cacert "$CAROOT/rootCA.pem" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/" >/dev/null ||
		fail "$name: the route does not answer: $(tail -n 5 "$work/caddy-$adapter.log")"
	t0=$(awk '{print $14 + $15}' "/proc/$caddy_pid/stat")
	out="$work/wrk-${name%%.*}.txt"
	wrk -t2 -c"$conns" -d"${duration}s" --latency -H "Host: bench.localhost" "https://127.0.0.1:$https_port/" >"$out" 2>&1 || true
	t1=$(awk '{print $14 + $15}' "/proc/$caddy_pid/stat")
	stop_caddy
	reqs=$(awk '/requests in/ {print $1}' "$out")
	[ -n "$reqs" ] && [ "$reqs" -gt 0 ] || fail "$name: wrk served nothing: $(cat "$out")"
	printf '%s\t%s\t%s\t%s\t%.1f us\n' "$name" "$(awk '/Requests\/sec/ {printf "%d", $2}' "$out")" \
		"$(awk '$1 == "50%" {print $2}' "$out")" "$(awk '$1 == "99%" {print $2}' "$out")" \
		"$(awk -v t=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {print t / hz / n * 1e6}')" >>rows.tsv
	if grep -q '"level":"error"' "$work/caddy-$adapter.log"; then
		fail "$name: Caddy logged errors: $(grep -m3 '"level":"error"' "$work/caddy-$adapter.log")"
	fi
}
run "1. plain Caddy reverse_proxy" plain.Caddyfile caddyfile
run "1b. plain Caddy reverse_proxy, access log to a file" plain-log.Caddyfile caddyfile
run "2. --adapter pomerium, public route, Pomerium's default logs and headers" pomerium.yaml pomerium
lines=$(grep -c '"msg":"authorize check"' "$work/caddy-pomerium.log" || true)
run "3. the same, every request traced to Jaeger" pomerium-otel.yaml pomerium
traces=$(curl -s "http://127.0.0.1:16686/api/traces?service=caddy-iap-bench&limit=1" | grep -c traceID || true)

say "Results ($duration s per contender, $conns connections, $(nproc) cores)"
awk -F'\t' 'NR == 1 {print "| " $1 " | " $2 " | " $3 " | " $4 " | " $5 " | requests/s vs plain |"; print "| --- | ---: | ---: | ---: | ---: | ---: |"; next}
	NR == 2 {base = $2} {printf "| %s | %s | %s | %s | %s | %.2fx |\n", $1, $2, $3, $4, $5, $2 / base}' rows.tsv
echo
echo "Contender 2 wrote $lines authorize lines; Jaeger holds traces of contender 3: $([ "$traces" -gt 0 ] && echo yes || echo no)."
