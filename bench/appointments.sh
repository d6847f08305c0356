#!/usr/bin/env bash
# Appointments rush and ANTS hub latency, on SQLite and PostgreSQL side by side.
#
#   bash bench/appointments.sh                 # about 1 minute
#
# For each engine, in the same run: the raw capacity-checked booking through the driver
# (UPDATE … WHERE booked < capacity, then INSERT; 64 goroutines, 1,000 slots), then
# createAppointment over HTTP on loopback (64 concurrent clients, a full Parvis with every
# side effect of a booking: rules, per-person uniqueness, confirmation job), then
# availableTimeSlots for 20 meeting points over 3 months (200 sequential calls, median and
# p99). Zero overbooking is checked after the rush. Settings: DURATION (5s per rush),
# PARVIS_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres; empty string
# to skip PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out-appointments
mkdir -p "$out"
export APPT_BENCH=1 APPT_BENCH_DURATION="${DURATION:-5s}"
export PARVIS_TEST_POSTGRES="${PARVIS_TEST_POSTGRES-postgres://postgres@127.0.0.1:5432/postgres}"
go test -count=1 -timeout 10m -run '^TestBenchAppointments$' ./modules/appointments/ -v > "$out/raw.txt" 2>&1 || { tail -40 "$out/raw.txt"; exit 1; }
{
  echo "| engine | raw booking/s | HTTP createAppointment/s | HTTP / raw | overbooked slots | availableTimeSlots 20 MP × 3 months: median | p99 |"
  echo "|---|---|---|---|---|---|---|"
  grep '^BENCH ' "$out/raw.txt" | sed -E 's/^BENCH engine=([a-z]+) raw_per_s=([0-9.]+) http_per_s=([0-9.]+) ratio=([0-9.]+) overbooked_slots=([0-9]+) hub_median_ms=([0-9.]+) hub_p99_ms=([0-9.]+)/| \1 | \2 | \3 | \4 | \5 | \6 ms | \7 ms |/'
} | tee "$out/report.md"
