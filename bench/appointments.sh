#!/usr/bin/env bash
# Appointments rush and ANTS hub latency, on SQLite and PostgreSQL side by side.
#
#   bash bench/appointments.sh                 # about 1 minute
#
# For each engine, in the same run: the raw capacity-checked booking through the driver
# (UPDATE … WHERE booked < capacity, then INSERT; 64 goroutines, 1,000 slots), then
# createAppointment over HTTP on loopback (64 concurrent clients, a full Parvis with every
# side effect of a booking: rules, per-person uniqueness, the confirmation outbox), then
# availableTimeSlots for 20 meeting points over 3 months (200 sequential calls, median and
# p99; uncached, then with the 5-second answer cache), and GET /healthz from the same
# clients as the HTTP ceiling. Zero overbooking is checked after the rush. The machine's load
# is recorded before and after: on two shared cores, other work changes every figure.
# Settings: DURATION (5s per rush), APPT_BENCH_PROFILE (a directory: one CPU profile per
# phase and engine),
# PARVIS_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres; empty string
# to skip PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out-appointments
mkdir -p "$out"
export APPT_BENCH=1 APPT_BENCH_DURATION="${DURATION:-5s}"
export PARVIS_TEST_POSTGRES="${PARVIS_TEST_POSTGRES-postgres://postgres@127.0.0.1:5432/postgres}"
load_before=$(uptime)
go test -count=1 -timeout 10m -run '^TestBenchAppointments$' ./modules/appointments/ -v > "$out/raw.txt" 2>&1 || { tail -40 "$out/raw.txt"; exit 1; }
load_after=$(uptime)
{
  echo "Load: before ${load_before#*load average: }, after ${load_after#*load average: } (1, 5, 15 min)."
  echo
  echo "| engine | raw booking/s | HTTP createAppointment/s | HTTP / raw | overbooked slots | availableTimeSlots 20 MP × 3 months, uncached: median | p99 | cached (5 s): median | p99 | HTTP floor: GET /healthz/s | process CPU per booking: raw / HTTP |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  # key=value pairs, in the order of the header (sed cannot count past nine groups); the
  # PHASE lines give the test process's CPU time per operation (server and clients; on
  # PostgreSQL, without the database server's).
  grep -E '^(BENCH|PHASE) ' "$out/raw.txt" | awk '
    $1 == "PHASE" { delete p; for (i = 2; i <= NF; i++) { split($i, kv, "="); p[kv[1]] = kv[2] }; cpu[p["engine"] "/" p["phase"]] = p["cpu_us_per_op"]; next }
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      e = v["engine"]
      printf "| %s | %s | %s | %s | %s | %s ms | %s ms | %s ms | %s ms | %s | %s / %s µs |\n", e, v["raw_per_s"], v["http_per_s"], v["ratio"],
        v["overbooked_slots"], v["hub_median_ms"], v["hub_p99_ms"], v["hub_cached_median_ms"], v["hub_cached_p99_ms"], v["floor_per_s"],
        cpu[e "/raw"], cpu[e "/http"] }'
} | tee "$out/report.md"
