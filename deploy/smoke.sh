#!/usr/bin/env bash
# Smoke test of a running Smart Alarm deployment, as a user meets it: health, register, log in,
# an alarm due in 10 s rings, delete it, erase the account. Exits non-zero at the first failure.
#
#   deploy/smoke.sh https://alarm.example.com      # or http://127.0.0.1:8080
#
# Needs bash, curl and jq. SMOKE_RING_TIMEOUT (default 40 s) bounds the wait for the ring;
# the account is erased even when a later step fails, so a failed run leaves nothing behind.
# SMOKE_COLOR=blue|green with SMOKE_PREVIEW_TOKEN sends every request with
# `X-Deploy-Color: <color>:<token>`, which the OCI gateway and load balancer of
# deploy/terraform route to that color: the idle color of a blue-green release is checked
# through the public endpoint before the switch. Headers and bodies go to curl through private
# files, never on its command line (the token, the password and the access token would show in
# the process list).
set -euo pipefail

base=${1:?usage: smoke.sh BASE_URL}
base=${base%/}
ring_timeout=${SMOKE_RING_TIMEOUT:-40}
email="smoke-$(date -u +%Y%m%d%H%M%S)-${RANDOM}${RANDOM}@example.com"
password="smoke test passphrase ${RANDOM}${RANDOM}${RANDOM}"
token=""
erased=false
work=$(mktemp -d)
chmod 700 "$work"
: >"$work/headers"
case ${SMOKE_COLOR:-} in
    "") ;;
    blue | green)
        [[ ${SMOKE_PREVIEW_TOKEN:-} =~ ^[A-Za-z0-9_-]{32,128}$ ]] || {
            printf 'smoke: SMOKE_COLOR needs SMOKE_PREVIEW_TOKEN (32 to 128 of A-Z a-z 0-9 _ -)\n' >&2
            exit 2
        }
        printf 'x-deploy-color: %s:%s\n' "$SMOKE_COLOR" "$SMOKE_PREVIEW_TOKEN" >>"$work/headers"
        ;;
    *)
        printf 'smoke: SMOKE_COLOR must be blue or green, not %s\n' "$SMOKE_COLOR" >&2
        exit 2
        ;;
esac

say() { printf 'smoke: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# One request: prints the body, fails unless the status is the expected one. A fifth argument
# is sent as If-Match (changes to an alarm name the version they change).
call() {
    local expect=$1 method=$2 path=$3 body=${4:-} if_match=${5:-}
    {
        cat "$work/headers"
        echo 'accept: application/json'
        if [[ -n $token ]]; then echo "authorization: Bearer ${token}"; fi
        if [[ -n $if_match ]]; then echo "if-match: \"${if_match}\""; fi
        if [[ -n $body ]]; then echo 'content-type: application/json'; fi
    } >"$work/request-headers"
    local args=(-sS -o "$work/answer" -w '%{http_code}' -X "$method" --max-time 15
        -H "@$work/request-headers")
    if [[ -n $body ]]; then
        printf '%s' "$body" >"$work/body"
        args+=(--data-binary "@$work/body")
    fi
    local code
    code=$(curl "${args[@]}" "${base}${path}") || fail "$method $path: no answer"
    if [[ $code != "$expect" ]]; then
        fail "$method $path answered $code, expected $expect: $(head -c 500 "$work/answer")"
    fi
    cat "$work/answer"
}

erase() {
    if [[ -n $token && $erased == false ]]; then
        erased=true
        call 204 DELETE /api/v1/auth/me "$(jq -nc --arg p "$password" '{password: $p}')" >/dev/null \
            && say "account erased"
    fi
}
# erase runs in a subshell: its own failure must not skip removing the folder, which holds the
# password and the tokens.
trap '(erase); rm -rf "$work"' EXIT

say "health"
health=$(call 200 GET /health/ready)
[[ $(jq -r .status <<<"$health") != down ]] || fail "ready but down: $health"

say "register ${email}"
call 201 POST /api/v1/auth/register "$(jq -nc --arg e "$email" --arg p "$password" \
    '{email: $e, password: $p, display_name: "Smoke test", time_zone: "UTC"}')" >/dev/null
login=$(call 200 POST /api/v1/auth/login "$(jq -nc --arg e "$email" --arg p "$password" \
    '{email: $e, password: $p}')")
token=$(jq -r .access_token <<<"$login")
[[ -n $token && $token != null ]] || fail "no access token: $login"

# Due 10 s from now, in UTC to the second.
due=$(date -u -d '+10 seconds' +%s)
alarm=$(call 201 POST /api/v1/alarms "$(jq -nc --arg d "$(date -u -d "@$due" +%F)" \
    --arg t "$(date -u -d "@$due" +%T)" \
    '{name: "Smoke test", time_zone: "UTC", schedules: [{kind: "once", date: $d, time: $t}]}')")
id=$(jq -r .id <<<"$alarm")
say "alarm ${id} due at $(date -u -d "@$due" +%T) UTC"

deadline=$((due + ring_timeout))
while :; do
    ringing=$(call 200 GET /api/v1/ringing)
    if jq -e --arg id "$id" '[.items[] | select(.alarm_id == $id)] | length > 0' \
        <<<"$ringing" >/dev/null; then
        say "rang $(($(date -u +%s) - due)) s after it was due"
        break
    fi
    (($(date -u +%s) < deadline)) || fail "the alarm did not ring within ${ring_timeout} s of its time"
    sleep 1
done

# The ring may have changed the alarm (a one-off disables itself): delete the current version.
version=$(call 200 GET "/api/v1/alarms/${id}" | jq -r .version)
call 204 DELETE "/api/v1/alarms/${id}" "" "$version" >/dev/null
call 404 GET "/api/v1/alarms/${id}" >/dev/null
say "alarm deleted"
erase
call 401 GET /api/v1/alarms >/dev/null
say "passed"
