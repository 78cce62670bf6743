#!/usr/bin/env bash
# Draws bench/results.png from the first table of bench/results.md, as
# bench/run.sh writes it: one bar per contender in the table's order (1, 1b,
# 1c, 2, ...), each with its requests/s written on it, and the date and the
# machine of the run under the title. Needs gnuplot (gnuplot-nox).
#
#   bench/plot.sh [results.md [results.png]]
#
# The date and the machine come from the line "Measured on <date>, <machine>"
# that bench/run.sh writes into results.md; for results written before it did,
# the date is the day results.md was last committed and the machine is this
# one (the runs were made on the machine the project's sessions run on).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
in="${1:-$root/bench/results.md}"
out="${2:-$root/bench/results.png}"
command -v gnuplot >/dev/null || { echo "bench/plot.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }

work="$(mktemp -d /tmp/caddy-iap-plot.XXXXXX)"
trap 'rm -rf "$work"' EXIT INT TERM

# machine describes this machine: cores, CPU model, memory, OS.
machine() {
	local cpu mem os
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
	mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
	os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
	echo "$(nproc) cores ${cpu:-?}, ${mem:-? GiB}, ${os:-$(uname -s)}"
}

measured=$(sed -n 's/^Measured on \(.*\)$/\1/p' "$in" | head -n 1)
if [ -z "$measured" ]; then
	day=$(git -C "$root" log -1 --format=%cs -- "$(realpath --relative-to="$root" "$in")" 2>/dev/null || true)
	measured="${day:-$(date -u -r "$in" +%Y-%m-%d)}, $(machine)"
fi

# The contenders' rows: "| <n>. <name> | <requests/s> | ...", in the order
# of their numbers (1, 1b, 1c, 2, ...), whatever the order of the table.
awk -F' \\| ' '/^\| [0-9]+[a-z]?\. / && $2 ~ /^[0-9.]+$/ {
	label = substr($1, 3)
	n = label + 0; s = label; sub(/^[0-9]+/, "", s); letter = substr(s, 1, 1); if (letter == ".") letter = ""
	short["1"] = "1 plain reverse_proxy"; short["1b"] = "1b plain to mTLS upstream"
	short["1c"] = "1c plain + identity-sized headers"; short["2"] = "2 iap_route public"
	short["3"] = "3 signed in + policy"; short["4"] = "4 (3) + upstream mTLS"
	short["5"] = "5 caddy-security"; short["6"] = "6 oauth2-proxy (forward_auth)"
	key = n letter
	printf "%03d%s\t%s\t%s\n", n, letter, (key in short) ? short[key] : label, $2
}' "$in" | sort -k1,1 | cut -f2- >"$work/plot.dat"
[ -s "$work/plot.dat" ] || { echo "bench/plot.sh: no contender rows in $in" >&2; exit 1; }

gnuplot <<EOF
set terminal pngcairo size 1100,500 noenhanced
set output "$out"
set title "requests/s through Caddy, loopback (higher is better)\nmeasured on $measured" noenhanced
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set grid ytics
unset key
set xtics rotate by -20 offset -1,0
set bmargin 6
set datafile separator tab
plot "$work/plot.dat" using 0:2:xtic(1) with boxes lc rgb "#3b6ea5", \
     "" using 0:2:(sprintf("%.0f", \$2)) with labels offset 0,0.8 font ",11"
EOF
echo "bench/plot.sh: wrote $out ($(wc -l <"$work/plot.dat") contenders, measured on $measured)" >&2
