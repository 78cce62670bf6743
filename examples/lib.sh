# Shared helpers of the example scripts: sourced, not run.
# Expects: $root (the repository), $work (a scratch directory), $https_port.

caddy="${CADDY:-$root/caddy}"
pids=()

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

# need installs Debian packages for missing commands: need cmd[:package]...
need() {
	local missing=() spec cmd pkg
	for spec in "$@"; do
		cmd="${spec%%:*}" pkg="${spec#*:}"
		command -v "$cmd" >/dev/null || missing+=("$pkg")
	done
	((${#missing[@]})) || return 0
	say "installing ${missing[*]}"
	local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cleanup stops what the script started and removes its scratch directory
# (certificates and private keys included) unless the user named it
# (WORK=...) or asked to keep it (KEEP_WORK=1); on exit and on Ctrl-C.
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -z "${WORK:-}" ] && [ -z "${KEEP_WORK:-}" ] && [[ "${work:-}" == /tmp/caddy-iap-* ]]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT INT TERM

# wait_port waits for something to listen on 127.0.0.1:$1.
wait_port() {
	for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# start_caddy runs ./caddy on a config (start_caddy <file> [adapter]; the
# adapter defaults to caddyfile), from $work, its data kept in $work.
start_caddy() {
	[ -x "$caddy" ] || fail "$caddy is missing: run ./xcaddy.sh first"
	local adapter="${2:-caddyfile}"
	# Another program on the port would answer in Caddy's place.
	(echo >/dev/tcp/127.0.0.1/"$https_port") 2>/dev/null && fail "port $https_port is in use by another program: stop it, or run this where the port is free"
	say "caddy run --adapter $adapter --config $(basename "$1")"
	(cd "$work" && XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" \
		exec "$caddy" run --adapter "$adapter" --config "$1" >"$work/caddy.log" 2>&1) &
	caddy_pid=$!
	pids+=("$caddy_pid")
	wait_port "$https_port" || fail "caddy did not start: $(cat "$work/caddy.log")"
}
stop_caddy() { kill "$caddy_pid" 2>/dev/null; wait "$caddy_pid" 2>/dev/null || true; }

# https_get host [curl args...]: prints the status, keeps the body in
# $work/body. Retries while the site certificate is being issued.
https_get() {
	local host="$1" code
	shift
	for _ in $(seq 50); do
		code=$(curl -sS --resolve "$host:$https_port:127.0.0.1" -o "$work/body" -w '%{http_code}' \
			"$@" "https://$host:$https_port/" 2>"$work/curl.err") && break
		grep -qiE 'alert|handshake|certificate required' "$work/curl.err" && break
		sleep 0.2
	done
	echo "${code:-000}"
}
