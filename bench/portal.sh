#!/usr/bin/env bash
# bench/portal.sh — the portal's page cache under load, side by side with nginx in one run.
#
# Starts `parvis serve` on a fresh SQLite data folder with the demo town (PARVIS_DEMO=true),
# fetches the home page of a district site (/mairie-11/), gives nginx the same bytes as a
# static file, then runs `wrk -t2 -c64 -d${DURATION}s --latency` in turn on:
#   nginx (static file), a bare Go net/http server writing the same bytes from memory (the
#   ceiling for any Go server here), Parvis from its page cache, Parvis rendering the page
#   each time (a query string makes a request uncacheable); $RUNS runs each, interleaved,
#   medians kept. The load average before and after is recorded: the machine is shared.
# Loopback only. Needs go, curl, nginx, wrk (apt-get install -y nginx wrk).
# Usage: bash bench/portal.sh   (RUNS=3 DURATION=10 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
PPORT=${PPORT:-18091}
NPORT=${NPORT:-18090}
BPORT=${BPORT:-18092}
HOST=127.0.0.1
PAGE=${PAGE:-/mairie-11/}

OUT=$PWD/bench/out-portal
rm -rf "$OUT"
mkdir -p "$OUT/nginx/root" "$OUT/data"
RAW=$OUT/raw.txt
: >"$RAW"
say() { printf '==> %s\n' "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

for tool in go curl nginx wrk; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y nginx wrk curl)" >&2; exit 1; }
done
for port in "$PPORT" "$NPORT" "$BPORT"; do # a server left running would be measured instead
	if curl -s -o /dev/null "http://$HOST:$port/"; then echo "bench: port $port is already in use; stop what listens there" >&2; exit 1; fi
done
PID=""
BPID=""
cleanup() {
	[[ -n $PID ]] && kill "$PID" 2>/dev/null || true
	[[ -n $BPID ]] && kill "$BPID" 2>/dev/null || true
	[[ -f $OUT/nginx/nginx.pid ]] && kill "$(cat "$OUT/nginx/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

# MODULES="kernel/builtin modules/portal" builds a distribution of just those packages
# (for when another module of the standard one is being rewritten); default ./cmd/parvis.
if [[ -n ${MODULES:-} ]]; then
	say "building parvis with: $MODULES"
	mkdir -p "$OUT/_main"
	{
		echo 'package main'
		echo 'import ("os"; "parvis.org/parvis/kernel/cli"'
		for m in $MODULES; do echo "_ \"parvis.org/parvis/$m\""; done
		echo ')'
		echo 'func main() { os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr)) }'
	} >"$OUT/_main/main.go"
	GOTOOLCHAIN=local go build -trimpath -o "$OUT/parvis" "./bench/out-portal/_main"
else
	say "building parvis"
	GOTOOLCHAIN=local go build -trimpath -o "$OUT/parvis" ./cmd/parvis
fi

say "starting parvis with the demo town on :$PPORT"
PARVIS_DATA=$OUT/data PARVIS_LISTEN=$HOST:$PPORT PARVIS_DEMO=true PARVIS_LOG_LEVEL=warn "$OUT/parvis" serve >"$OUT/parvis.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
	curl -sf -o /dev/null "http://$HOST:$PPORT/readyz" && break
	kill -0 "$PID" 2>/dev/null || { echo "bench: parvis exited at start-up:" >&2; tail -5 "$OUT/parvis.log" >&2; exit 1; }
	sleep 0.1
done
curl -sf -o "$OUT/nginx/root/index.html" "http://$HOST:$PPORT$PAGE"
SIZE=$(stat -c %s "$OUT/nginx/root/index.html")
HDR=$(curl -s -D - -o /dev/null "http://$HOST:$PPORT$PAGE" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-parvis-cache"{print $2}')
say "page $PAGE: $SIZE bytes, second request from the cache: $HDR"
[[ $HDR == hit ]] || { echo "bench: the page is not served from the cache" >&2; exit 1; }

sed -e "s#ROOT#$OUT/nginx/root#" -e "s#127.0.0.1:18080#$HOST:$NPORT#" -e "s#\./nginx.pid#$OUT/nginx/nginx.pid#" \
	-e "s#\./error.log#$OUT/nginx/error.log#" /work/shared/bench-reference/nginx.conf.example >"$OUT/nginx/nginx.conf" 2>/dev/null || cat >"$OUT/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off; sendfile on; tcp_nopush on;
    open_file_cache max=100 inactive=60s; keepalive_requests 100000;
    server { listen $HOST:$NPORT; root $OUT/nginx/root; location / { index index.html; } }
}
NGINX
nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx/"
sleep 0.3
cmp -s <(curl -s "http://$HOST:$NPORT/") "$OUT/nginx/root/index.html" || { echo "bench: nginx does not serve the same bytes" >&2; exit 1; }

say "starting a bare Go server with the same bytes on :$BPORT"
mkdir -p "$OUT/_bare" # "_": go ./... patterns skip it
cat >"$OUT/_bare/main.go" <<'GO'
// A bare net/http server writing one page from memory: the ceiling for a Go server.
package main

import (
	"net/http"
	"os"
	"strconv"
)

func main() {
	page, err := os.ReadFile(os.Args[2])
	if err != nil {
		panic(err)
	}
	n := strconv.Itoa(len(page))
	http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", n)
		w.Write(page)
	}))
}
GO
(cd "$OUT/_bare" && GOTOOLCHAIN=local go build -o "$OUT/_bare/bare" main.go)
"$OUT/_bare/bare" "$HOST:$BPORT" "$OUT/nginx/root/index.html" &
BPID=$!
sleep 0.3
cmp -s <(curl -s "http://$HOST:$BPORT/") "$OUT/nginx/root/index.html" || { echo "bench: the bare Go server does not serve the same bytes" >&2; exit 1; }

# run NAME URL: one wrk run; appends "NAME rps p99ms" to $OUT/results.
run() {
	local out
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$2")
	printf '### %s %s\n%s\n' "$1" "$2" "$out" >>"$RAW"
	local rps p99
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000} print v}' <<<"$out")
	echo "$1 $rps $p99" >>"$OUT/results"
	say "$1: $rps req/s, p99 $p99 ms"
}
: >"$OUT/results"
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
say "load average before: $LOAD_BEFORE"
for i in $(seq 1 "$RUNS"); do
	say "run $i/$RUNS"
	run nginx "http://$HOST:$NPORT/"
	run bare-go "http://$HOST:$BPORT/"
	run parvis-cached "http://$HOST:$PPORT$PAGE"
	run parvis-uncached "http://$HOST:$PPORT$PAGE?nocache=$i"
done

LOAD_AFTER=$(uptime | sed 's/.*load average: //')
PEAK_RSS=$(awk '/^VmHWM:/ {printf "%.0f MiB", $2/1024}' "/proc/$PID/status")

med() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$OUT/results" | median; }
N=$(med nginx 2); B=$(med bare-go 2); C=$(med parvis-cached 2); U=$(med parvis-uncached 2)
{
	echo "Portal page cache — $PAGE ($SIZE bytes), wrk -t2 -c$CONNS -d${DURATION}s, median of $RUNS runs, $(date -u '+%F %H:%M UTC')"
	[[ -n ${MODULES:-} ]] && echo "Distribution: kernel + $MODULES"
	echo "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER; Parvis peak RSS: $PEAK_RSS (PARVIS_GC_HEADROOM=${PARVIS_GC_HEADROOM:-128} MiB)"
	printf '| %-34s | %12s | %8s | %10s |\n' "Server" "req/s" "p99 ms" "× nginx"
	printf '| %-34s | %12s | %8s | %10s |\n' "nginx, static file" "$N" "$(med nginx 3)" "1.00"
	printf '| %-34s | %12s | %8s | %10s |\n' "bare Go net/http, bytes in memory" "$B" "$(med bare-go 3)" "$(awk -v a="$B" -v b="$N" 'BEGIN{printf "%.2f", a/b}')"
	printf '| %-34s | %12s | %8s | %10s |\n' "Parvis, page cache" "$C" "$(med parvis-cached 3)" "$(awk -v a="$C" -v b="$N" 'BEGIN{printf "%.2f", a/b}')"
	printf '| %-34s | %12s | %8s | %10s |\n' "Parvis, rendered every time" "$U" "$(med parvis-uncached 3)" "$(awk -v a="$U" -v b="$N" 'BEGIN{printf "%.3f", a/b}')"
} | tee "$OUT/table.md"
