#!/usr/bin/env bash
# bench/login.sh BASE_URL PARVIS_BIN DATA_DIR — signs in to the back office of the running
# Parvis at BASE_URL the way a person does (setup link, password, login form) and prints
# the Cookie header value of the session, for kernel.sh. Fails (status 1) when the
# identity module is absent or a step does not answer as expected.
set -euo pipefail
base=$1 bin=$2 data=$3
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
password="bench-$(date +%s)-Ouvert-Parvis"

csrf() { grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
post() { # path, then curl --data-urlencode arguments; prints the status code
	local p=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" -H "Origin: $base" -H "Sec-Fetch-Site: same-origin" \
		--data-urlencode "csrf=$token" "$@" "$base$p"
}
# setup LINK EMAIL: chooses the password through the one-time setup page.
setup() {
	local path=/admin/setup/${1##*/admin/setup/}
	token=$(curl -s -b "$jar" -c "$jar" "$base$path" | csrf)
	[[ -n $token ]] || return 1
	code=$(post "$path" --data-urlencode "email=$2" --data-urlencode "name=Bench Agent" \
		--data-urlencode "password=$password" --data-urlencode "confirm=$password")
	[[ $code == 303 ]]
}
linkin() { grep -o 'https\?://[^ ]*/admin/setup/[^ ]*' | head -1; }

# The first administrator's setup link, written at first start; else a new administrator.
if [[ -f $data/first-admin.txt ]] && setup "$(linkin <"$data/first-admin.txt")" admin@localhost; then
	email=admin@localhost
else
	email="bench-$(date +%s%N)@example.org"
	link=$(PARVIS_DATA=$data "$bin" admin create "$email" | linkin)
	[[ -n $link ]] || { echo "login.sh: parvis admin create gave no setup link" >&2; exit 1; }
	setup "$link" "$email" || { echo "login.sh: setup of $email failed" >&2; exit 1; }
fi

token=$(curl -s -b "$jar" -c "$jar" "$base/admin/login" | csrf)
code=$(post /admin/login --data-urlencode "email=$email" --data-urlencode "password=$password" --data-urlencode "next=/admin/")
[[ $code == 303 ]] || { echo "login.sh: login answered $code" >&2; exit 1; }

cookie=$(awk -F'\t' '$6 == "parvis_bo" || $6 == "parvis_csrf" {printf "%s%s=%s", sep, $6, $7; sep="; "}' "$jar")
[[ $cookie == *parvis_bo=* ]] || { echo "login.sh: no session cookie" >&2; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/admin/")
[[ $status == 200 ]] || { echo "login.sh: /admin/ answered $status with the session" >&2; exit 1; }
echo "$cookie"
