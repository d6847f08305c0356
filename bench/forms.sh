#!/usr/bin/env bash
# Forms: submissions over HTTP beside the raw INSERT, and the responses list at scale, on
# SQLite and PostgreSQL side by side.
#
#   bash bench/forms.sh                # a few minutes (the 1,000,000-row fill dominates)
#
# For each engine, in the same run, three times (the median is reported): the raw INSERT of
# the same forms_responses row through the driver alone (16 goroutines), then submitResponse
# over HTTP on loopback (16 concurrent clients; a ten-field form: validation, routing by
# postcode, workflow start, the receipt job queued, all in one transaction; the job renders
# the PDF and queues the mail after the request, on the job workers). Then
# the back-office responses list (first page, a state filter, oldest first; median of 7) at
# 100,000 and 1,000,000 stored responses, made by one INSERT … SELECT (bench only).
# Settings: DURATION (3s per run), SMALL=1 (10,000 rows only), PARVIS_TEST_POSTGRES
# (default postgres://postgres@127.0.0.1:5432/postgres; empty string to skip PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out-forms
mkdir -p "$out"
export FORMS_BENCH=1 FORMS_BENCH_DURATION="${DURATION:-3s}"
[ -n "${SMALL:-}" ] && export FORMS_BENCH_SMALL=1
export PARVIS_TEST_POSTGRES="${PARVIS_TEST_POSTGRES-postgres://postgres@127.0.0.1:5432/postgres}"
uptime > "$out/uptime.txt"
timeout 20m go test -count=1 -timeout 20m -run '^TestBenchForms$' ./modules/forms/ -v > "$out/raw.txt" 2>&1 || { tail -40 "$out/raw.txt"; exit 1; }
{
  echo "load before: $(cat "$out/uptime.txt")"
  echo
  echo "| engine | HTTP submissions/s | HTTP p99 | raw INSERT/s | raw p99 | HTTP / raw |"
  echo "|---|---|---|---|---|---|"
  grep '^BENCH ' "$out/raw.txt" | sed -E 's/^BENCH engine=([a-z]+) http_per_s=([0-9.]+) http_p99_ms=([0-9.]+) raw_per_s=([0-9.]+) raw_p99_ms=([0-9.]+) ratio=([0-9.]+)/| \1 | \2 | \3 ms | \4 | \5 ms | \6 |/'
  echo
  echo "| engine | stored responses | list query | median | max of 7 | fill time |"
  echo "|---|---|---|---|---|---|"
  grep '^BENCHLIST ' "$out/raw.txt" | sed -E 's/^BENCHLIST engine=([a-z]+) rows=([0-9]+) query="([^"]*)" median_ms=([0-9.]+) max_ms=([0-9.]+) fill_s=([0-9.]+)/| \1 | \2 | `\3` | \4 ms | \5 ms | \6 s |/'
} | tee "$out/report.md"
