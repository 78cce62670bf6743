# shellcheck shell=bash
# The load and fault drills of bench/run.sh (sourced by it after setup, with
# $mode, Caddy under test at $caddy_pid with its admin on :2999, Dex at
# $dex_pid and a signed-in $cookie). Each prints PASS or FAIL and a summary.

# wrk_bg <seconds> <connections> <path>: load in the background, output in wrk-drill.txt
wrk_bg() {
	wrk -t2 -c"$2" -d"${1}s" --latency --timeout 10s -H "Host: bench.localhost" -H "Cookie: $cookie" \
		"https://127.0.0.1:$https_port$3" >wrk-drill.txt 2>&1 &
	wrk_pid=$!
}

# wrk_errors: non-2xx responses plus socket errors of the last wrk run.
wrk_errors() {
	awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' wrk-drill.txt
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$caddy_pid/status"; }
goroutines() { curl -s "http://127.0.0.1:2999/debug/pprof/goroutine?debug=1" | head -1 | awk '{print $4}'; }

case "$mode" in
soak)
	minutes="${SOAK_MINUTES:-10}"
	say "Soak: 200 connections for $minutes minutes on /mtls (signed in, ten-rule policy, upstream mTLS)"
	wrk_bg $((minutes * 60)) 200 /mtls
	echo "minute rss_kb goroutines" | tee soak.txt
	for m in $(seq 0 "$minutes"); do
		echo "$m $(rss_kb) $(goroutines)" | tee -a soak.txt
		[ "$m" = "$minutes" ] || sleep 60
	done
	wait "$wrk_pid" || true
	cat wrk-drill.txt
	errors=$(wrk_errors)
	say "soak: $errors errors; RSS and goroutines per minute in $work/soak.txt"
	[ "$errors" = 0 ] || fail "soak: $errors errors"
	;;
reload)
	say "Reload: caddy reload every 2 s for 60 s under load on /signed"
	wrk_bg 62 64 "${DRILL_PATH:-/signed}"
	reloads=0
	for _ in $(seq 30); do
		sleep 2
		# --force reloads even though the config is unchanged.
		"$caddy" reload --address 127.0.0.1:2999 --adapter caddyfile --config bench.Caddyfile --force >>reload.log 2>&1 && reloads=$((reloads + 1))
	done
	wait "$wrk_pid" || true
	cat wrk-drill.txt
	non2xx=$(awk '/Non-2xx/ {print $NF}' wrk-drill.txt)
	socket=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' wrk-drill.txt)
	code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/signed")
	# A reload closes idle keep-alive connections (Caddy's graceful
	# switch); wrk counts a read on such a connection as a socket error
	# where browsers and Go clients retry. Plain reverse_proxy shows the same
	# (DRILL_PATH=/plain bench/run.sh reload), so the drill fails only on
	# error responses or a lost session.
	say "reload: $reloads reloads, ${non2xx:-0} error responses, ${socket:-0} socket errors (keep-alive connections closed by the reload), the session afterwards: $code"
	[ "$reloads" = 30 ] && [ "${non2xx:-0}" = 0 ] && [ "$code" = 200 ] || fail "reload drill"
	;;
idp-down)
	say "IdP down: Dex stopped for 20 s under load on /signed, then started again"
	wrk_bg 40 64 /signed
	sleep 10
	kill "$dex_pid"
	sleep 9 # the IdP is checked every 5 s
	down=$(curl -sk -o /dev/null -w '%{http_code}' -H "Accept: text/html" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/signed")
	sleep 1
	"$root/bin/dex" serve dex.yaml >>dex.log 2>&1 &
	pids+=($!)
	wait_port 5557 || fail "Dex did not come back"
	wait "$wrk_pid" || true
	cat wrk-drill.txt
	errors=$(wrk_errors)
	up=$(cd "$root" && go run ./bench/signin -caddy "127.0.0.1:$https_port" -url "https://bench.localhost:$https_port/signed/" -user alice@example.com -password password >/dev/null && echo signed-in || echo failed)
	say "idp-down: signed-in requests failed: $errors; a new sign-in while Dex was down got $down; after Dex came back: $up"
	[ "$errors" = 0 ] && [ "$down" = 503 ] && [ "$up" = signed-in ] || fail "idp-down drill"
	;;
rotate)
	say "Rotation: the upstream client certificate files replaced every 5 s for 60 s under load on /mtls, no reload"
	wrk_bg 62 64 /mtls
	subject() { curl -sk -H "Cookie: $cookie" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/rotate"; }
	first=$(subject)
	prev_subject=$first
	rotations=0 seen=0 halfway_ok=0
	[ "$first" = caddy@localhost ] || fail "/rotate before any rotation: the upstream saw '$first'"
	for n in $(seq 12); do
		sleep 4
		mkcert -client -cert-file staged.pem -key-file staged-key.pem "rotated-$n@localhost" >/dev/null 2>&1
		# As a careless deploy would: in place, the certificate first.
		cp staged.pem caddy-client.pem
		sleep 0.5
		# The certificate does not match the old key yet: the old pair stays.
		[ "$(subject)" = "$prev_subject" ] && halfway_ok=$((halfway_ok + 1))
		cp staged-key.pem caddy-client-key.pem
		rotations=$((rotations + 1))
		now=$(subject)
		prev_subject=$now
		case "$now" in *"rotated-$n@localhost"*) seen=$((seen + 1)) ;; *) say "rotation $n: the upstream saw '$now'" ;; esac
	done
	wait "$wrk_pid" || true
	cat wrk-drill.txt
	errors=$(wrk_errors)
	reloaded=$(grep -c "upstream client certificate reloaded" caddy.log || true)
	say "rotate: $rotations rotations; the upstream saw the new certificate on the next new connection after $seen; the old pair kept while half-rotated: $halfway_ok; $reloaded reloads logged; $errors failed requests under load"
	[ "$seen" = 12 ] && [ "$halfway_ok" = 12 ] && [ "$errors" = 0 ] || fail "rotate drill"
	;;
keys)
	# Under load on /keys (signed in; bench/keys is both the browser-like
	# clients, each keeping the cookies it is given, and the upstream, which
	# verifies every assertion against the JWKS it fetched, fetching it
	# again only for a key ID it does not hold), six reloads, one every
	# DURATION/6 s: the signing key is rotated as Pomerium's docs say (add
	# the new key second, put it first, remove the old one), then the cookie
	# secret (the new one current with the old one previous, then the old
	# one removed).
	step=$((duration / 6 > 2 ? duration / 6 : 2))
	openssl ecparam -genkey -name prime256v1 -noout -out k-old.pem 2>/dev/null
	openssl ecparam -genkey -name prime256v1 -noout -out k-new.pem 2>/dev/null
	secret_old=$(awk '$1 == "cookie_secret" {print $2; exit}' bench.Caddyfile)
	secret_new=$(head -c32 /dev/urandom | base64)
	reloads=0
	# keys_reload <name> <signing key files> <cookie lines, | between>:
	# bench.Caddyfile with those keys, reloaded (each step its own key file,
	# so that every config differs).
	keys_reload() {
		cat $2 >"keys-$1.pem"
		awk -v f="$work/keys-$1.pem" -v c="$3" '$1 == "cookie_secret" {
			print "\t\tsigning_key_file " f
			n = split(c, l, "|"); for (i = 1; i <= n; i++) print "\t\t" l[i]
			next
		} { print }' bench.Caddyfile >"keys-$1.Caddyfile"
		"$caddy" reload --address 127.0.0.1:2999 --adapter caddyfile --config "keys-$1.Caddyfile" >>reload.log 2>&1 ||
			fail "keys drill, reload $1: $(tail -n3 reload.log)"
		reloads=$((reloads + 1))
	}
	keys_reload 0-own-key k-old.pem "cookie_secret $secret_old"
	say "Keys: ${duration}s of load on /keys, 16 clients; a reload every ${step}s"
	(cd "$root" && go run ./bench/keys -caddy "127.0.0.1:$https_port" -url "https://bench.localhost:$https_port/keys/" \
		-cookie "$cookie" -upstream 127.0.0.1:9091 -clients 16 -duration "${duration}s") >keys.txt 2>&1 &
	keys_pid=$!
	pids+=($keys_pid)
	wait_port 9091 || fail "bench/keys did not start: $(cat keys.txt)"
	sleep "$step"
	keys_reload 1-new-key-published "k-old.pem k-new.pem" "cookie_secret $secret_old"
	say "1. the new signing key is published second"
	sleep "$step"
	keys_reload 2-new-key-signs "k-new.pem k-old.pem" "cookie_secret $secret_old"
	say "2. the new signing key is first: it signs"
	sleep "$step"
	keys_reload 3-old-key-retired k-new.pem "cookie_secret $secret_old"
	say "3. the old signing key is removed"
	sleep "$step"
	keys_reload 4-new-secret k-new.pem "cookie_secret $secret_new|cookie_secret_previous $secret_old"
	say "4. cookie_secret is the new one, the old one previous"
	sleep "$step"
	keys_reload 5-old-secret-removed k-new.pem "cookie_secret $secret_new"
	say "5. the old cookie secret is removed"
	status=0
	wait "$keys_pid" || status=$?
	cat keys.txt
	after=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" -H "Accept: text/html" --resolve "bench.localhost:$https_port:127.0.0.1" "https://bench.localhost:$https_port/keys/")
	refused=$(grep -c "session cookie refused" caddy.log || true)
	say "keys: $reloads reloads; $(grep '^keys:' keys.txt); $(grep '^upstream:' keys.txt | cut -d';' -f1); the first session cookie, never sealed again, now gets $after ($refused refusals logged)"
	[ "$status" = 0 ] && [ "$after" = 302 ] || fail "keys drill"
	;;
serve)
	printf '%s\n' "$cookie" >cookie.txt
	say "serve: the bench stack runs until ^C; Caddy on :$https_port (admin :2999), the session cookie in $work/cookie.txt"
	wait "$caddy_pid"
	;;
profile)
	path="${PROFILE_PATH:-/signed}"
	say "Profile: 20 s of load on $path, a 15 s CPU profile of Caddy from its admin endpoint"
	wrk_bg 20 64 "$path"
	sleep 3
	curl -s -o cpu.pprof "http://127.0.0.1:2999/debug/pprof/profile?seconds=15"
	wait "$wrk_pid" || true
	cat wrk-drill.txt
	go tool pprof -top -nodecount=40 "$caddy" cpu.pprof 2>/dev/null | tee profile-top.txt
	say "profile: $work/cpu.pprof; browse it with: go tool pprof -http=: $caddy $work/cpu.pprof"
	;;
*)
	fail "unknown mode $mode (bench, soak, reload, idp-down, rotate, keys, profile, serve)"
	;;
esac
