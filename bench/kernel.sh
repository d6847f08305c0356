#!/usr/bin/env bash
# bench/kernel.sh — Parvis kernel benchmark, side by side with nginx in the same run.
#
# Measures, on loopback only and for bounded durations:
#   1. start-up time of `parvis serve` until /readyz answers 200: fresh SQLite data folder
#      and existing one (median of $STARTS runs each);
#   2. idle memory after start-up and a few requests (median of 3 starts), beside nginx's
#      (master + workers) serving one static file;
#   3. page throughput with `wrk -t2 -c64 -d${DURATION}s --latency`: a back-office page
#      as a signed-in agent when the identity module is there (else the public home page),
#      against nginx serving the same bytes as a static file; median of $RUNS runs each.
# Prints a table and writes it, with raw outputs, to bench/out/ (gitignored).
#
# Needs: go, curl, nginx and wrk (apt-get install nginx wrk). Usage: bash bench/kernel.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STARTS=${STARTS:-5}     # start-up runs per case
RUNS=${RUNS:-3}         # wrk runs per server
DURATION=${DURATION:-10} # seconds per wrk run
CONNS=${CONNS:-64}
PPORT=${PPORT:-18081}   # parvis
NPORT=${NPORT:-18080}   # nginx
HOST=127.0.0.1

OUT=$PWD/bench/out
rm -rf "$OUT"
mkdir -p "$OUT"
BIN=$OUT/parvis
RAW=$OUT/raw.txt
: >"$RAW"

say() { printf '==> %s\n' "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) {print "nan"; exit} if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

for tool in go curl nginx wrk; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install nginx wrk curl)" >&2; exit 1; }
done
for port in $PPORT $NPORT; do
	if curl -s -o /dev/null --max-time 1 "http://$HOST:$port/"; then
		echo "bench: port $port is already in use; set PPORT/NPORT" >&2
		exit 1
	fi
done

PID="" # the parvis running now, if any
cleanup() {
	[[ -n $PID ]] && kill "$PID" 2>/dev/null || true
	[[ -f $OUT/nginx/nginx.pid ]] && kill "$(cat "$OUT/nginx/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

say "building parvis and the start-up probe"
GOTOOLCHAIN=local go build -trimpath -o "$BIN" ./cmd/parvis
GOTOOLCHAIN=local go build -o "$OUT/startwait" ./bench/startwait

# serve DATA_DIR LOG: starts parvis on DATA_DIR; sets MS (until /readyz answers 200) and PID.
serve() {
	local line
	line=$(PARVIS_DATA=$1 PARVIS_LISTEN=$HOST:$PPORT PARVIS_LOG_LEVEL=warn \
		"$OUT/startwait" -url "http://$HOST:$PPORT/readyz" -log "$2" -- "$BIN" serve) ||
		{ echo "bench: parvis did not start; see $2" >&2; exit 1; }
	read -r MS PID <<<"$line"
}
# stop PID: SIGTERM (graceful), then wait for the port to be free.
stop() {
	kill "$1" 2>/dev/null || true
	for _ in $(seq 200); do
		if ! curl -s -o /dev/null --max-time 1 "http://$HOST:$PPORT/healthz"; then
			PID=""
			return 0
		fi
		sleep 0.05
	done
	kill -9 "$1" 2>/dev/null || true
	PID=""
}

# ---- 1. start-up time
say "start-up: $STARTS fresh data folders"
fresh=()
for i in $(seq "$STARTS"); do
	dir=$OUT/data-fresh-$i
	serve "$dir" "$OUT/serve-fresh-$i.log"
	fresh+=("$MS")
	echo "start-up fresh $i: $MS ms" >>"$RAW"
	stop "$PID"
done
DATA=$OUT/data-fresh-1
say "start-up: $STARTS starts on an existing data folder"
existing=()
for i in $(seq "$STARTS"); do
	serve "$DATA" "$OUT/serve-existing-$i.log"
	existing+=("$MS")
	echo "start-up existing $i: $MS ms" >>"$RAW"
	stop "$PID"
done
START_FRESH=$(printf '%s\n' "${fresh[@]}" | median)
START_EXISTING=$(printf '%s\n' "${existing[@]}" | median)

# ---- 2. idle memory (3 starts, each after a few requests)
say "idle memory: 3 starts"
rss=()
for i in 1 2 3; do
	serve "$DATA" "$OUT/serve-mem-$i.log"
	for _ in $(seq 10); do
		curl -s -o /dev/null "http://$HOST:$PPORT/"
		curl -s -o /dev/null "http://$HOST:$PPORT/admin/login"
		curl -s -o /dev/null "http://$HOST:$PPORT/healthz"
	done
	sleep 1
	r=$(rss_kib "$PID")
	rss+=("$r")
	echo "parvis idle RSS $i: $r KiB" >>"$RAW"
	stop "$PID"
done
PARVIS_RSS=$(printf '%s\n' "${rss[@]}" | median)

# ---- the page measured, and a session when the identity module can give one
say "choosing the page to measure"
PAGE=/
PAGE_KIND="public home page (no back-office login available)"
COOKIE=""
serve "$DATA" "$OUT/serve-wrk.log"
if [[ -x bench/login.sh ]] && COOKIE=$(bash bench/login.sh "http://$HOST:$PPORT" "$BIN" "$DATA" 2>>"$OUT/login.log"); then
	PAGE=/admin/
	PAGE_KIND="back-office home page, signed in as an agent"
else
	COOKIE=""
fi
hdr=()
[[ -n $COOKIE ]] && hdr=(-H "Cookie: $COOKIE")
status=$(curl -s -o "$OUT/page.html" -w '%{http_code}' "${hdr[@]}" "http://$HOST:$PPORT$PAGE")
if [[ $status != 200 ]]; then
	echo "bench: GET $PAGE answered $status, not 200 (see $OUT/page.html)" >&2
	exit 1
fi
BYTES=$(stat -c %s "$OUT/page.html")
say "page: $PAGE ($PAGE_KIND), $BYTES bytes"

# ---- nginx serving the same bytes
mkdir -p "$OUT/nginx/www" "$OUT/nginx/tmp"
cp "$OUT/page.html" "$OUT/nginx/www/index.html"
chmod -R a+rX "$OUT/nginx"
cat >"$OUT/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=100 inactive=60s;
    keepalive_requests 100000;
    client_body_temp_path $OUT/nginx/tmp/body;
    proxy_temp_path $OUT/nginx/tmp/proxy;
    fastcgi_temp_path $OUT/nginx/tmp/fastcgi;
    uwsgi_temp_path $OUT/nginx/tmp/uwsgi;
    scgi_temp_path $OUT/nginx/tmp/scgi;
    server {
        listen $HOST:$NPORT;
        root $OUT/nginx/www;
        location / { index index.html; }
    }
}
EOF
nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx/"
for _ in $(seq 100); do curl -s -o /dev/null "http://$HOST:$NPORT/" && break; sleep 0.05; done
nbytes=$(curl -s "http://$HOST:$NPORT/" | wc -c)
[[ $nbytes == "$BYTES" ]] || { echo "bench: nginx serves $nbytes bytes, want $BYTES" >&2; exit 1; }
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///')

# nginx idle memory: master and workers, after the same few requests.
for _ in $(seq 30); do curl -s -o /dev/null "http://$HOST:$NPORT/"; done
sleep 1
master=$(cat "$OUT/nginx/nginx.pid")
nginx_pids=("$master" $(pgrep -P "$master"))
NGINX_RSS=0
NGINX_PSS=0
for p in "${nginx_pids[@]}"; do
	NGINX_RSS=$((NGINX_RSS + $(rss_kib "$p")))
	NGINX_PSS=$((NGINX_PSS + $(pss_kib "$p")))
done
echo "nginx idle RSS (${#nginx_pids[@]} processes): $NGINX_RSS KiB, PSS $NGINX_PSS KiB" >>"$RAW"

# ---- 3. throughput, runs interleaved so both servers see the same machine state
# wrk_run URL: sets RPS and P99 (ms).
wrk_run() {
	local out
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "$1")
	printf '%s\n%s\n\n' "wrk $1" "$out" >>"$RAW"
	if grep -q "Non-2xx" <<<"$out"; then
		echo "bench: non-2xx answers from $1 (see $RAW)" >&2
		exit 1
	fi
	RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	P99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000} print v}' <<<"$out")
}
say "throughput: $RUNS × ${DURATION}s each, parvis and nginx alternately"
p_rps=() p_p99=() n_rps=() n_p99=()
for i in $(seq "$RUNS"); do
	wrk_run "http://$HOST:$PPORT$PAGE"
	p_rps+=("$RPS") p_p99+=("$P99")
	wrk_run "http://$HOST:$NPORT/"
	n_rps+=("$RPS") n_p99+=("$P99")
	say "  run $i: parvis ${p_rps[-1]} req/s, nginx ${n_rps[-1]} req/s"
done
P_RPS=$(printf '%s\n' "${p_rps[@]}" | median)
P_P99=$(printf '%s\n' "${p_p99[@]}" | median)
N_RPS=$(printf '%s\n' "${n_rps[@]}" | median)
N_P99=$(printf '%s\n' "${n_p99[@]}" | median)
# Memory of parvis after the load, for the record.
PARVIS_RSS_LOADED=$(rss_kib "$PID")
stop "$PID"

# ---- report
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
{
	echo "# Parvis kernel benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load generator on the same cores."
	echo "parvis $("$BIN" version | cut -d' ' -f2-), SQLite; nginx $NGINX_VERSION; wrk -t2 -c$CONNS -d${DURATION}s --latency."
	echo "Page: $PAGE — $PAGE_KIND, $BYTES bytes (nginx serves the same bytes as a static file)."
	echo
	echo "| Measure | Parvis | nginx | Parvis / nginx |"
	echo "|---|---|---|---|"
	echo "| start-up to /readyz 200, fresh data folder (median of $STARTS) | $START_FRESH ms | | |"
	echo "| start-up to /readyz 200, existing data folder (median of $STARTS) | $START_EXISTING ms | | |"
	echo "| idle memory, RSS (Parvis: median of 3 starts; nginx: master + $((${#nginx_pids[@]} - 1)) workers) | $(mib "$PARVIS_RSS") MiB | $(mib "$NGINX_RSS") MiB (PSS $(mib "$NGINX_PSS") MiB) | $(ratio "$PARVIS_RSS" "$NGINX_RSS") |"
	echo "| page throughput, requests/s (median of $RUNS) | $(printf '%.0f' "$P_RPS") | $(printf '%.0f' "$N_RPS") | $(ratio "$P_RPS" "$N_RPS") |"
	echo "| page latency p99 (median of $RUNS) | $P_P99 ms | $N_P99 ms | $(ratio "$P_P99" "$N_P99") |"
	echo
	echo "Parvis RSS after the load: $(mib "$PARVIS_RSS_LOADED") MiB. Raw runs: bench/out/raw.txt."
} | tee "$OUT/report.md"
