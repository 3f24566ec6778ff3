#!/usr/bin/env bash
# Tests of deploy/release.sh's state steps against a stand-in `terraform` that answers the
# outputs a deployment has and records the plans asked of it: the candidate lands on the idle
# color only, the switch swaps the colors and moves the worker, a rollback plans the state from
# before, and bad tags are refused. (`migrate` and `smoke` need a cloud; they are not run here.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
ok() { printf 'ok   %s\n' "$1"; }
bad() {
    printf 'FAIL %s\n' "$1"
    failures=$((failures + 1))
}
check() { # name, expected, actual
    if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi
}

repo=gru.ocir.io/ns/smart-alarm
mkdir -p "$work/bin"
cat >"$work/bin/terraform" <<EOF
#!/usr/bin/env bash
# Stand-in: terraform -chdir=DIR output [-raw|-json] NAME, or plan ... (recorded).
shift # -chdir
case "\$1" in
    output)
        case "\$3" in
            live_color) printf blue ;;
            http_images) printf '{"blue":"$repo/alarm-http:v1","green":"$repo/alarm-http:v0"}' ;;
            images) printf '{"alarm_worker":"$repo/alarm-worker:v1","tools":"$repo/tools:v1","backup_uploader":"$repo/uploader:3"}' ;;
            *) exit 1 ;;
        esac ;;
    plan)
        for arg in "\$@"; do
            case "\$arg" in
                -var-file=*.tfvars.json) cp "\${arg#-var-file=}" "$work/planned.json" ;;
            esac
        done
        printf '%s\n' "\$*" >"$work/plan-args" ;;
    *) exit 1 ;;
esac
EOF
chmod +x "$work/bin/terraform"
export PATH="$work/bin:$PATH" REGISTRY=$repo
release=$here/release.sh

"$release" state >"$work/before.json"
check "state names the live and the idle color" "blue green" \
    "$(jq -r '"\(.live) \(.idle)"' "$work/before.json")"

"$release" candidate "$work/before.json" v2 >"$work/candidate.json"
check "the candidate goes to the idle color" "$repo/alarm-http:v2" \
    "$(jq -r '.http_images.green' "$work/candidate.json")"
check "the live color keeps its image" "$repo/alarm-http:v1" \
    "$(jq -r '.http_images.blue' "$work/candidate.json")"
check "the candidate does not switch" "blue" "$(jq -r .live "$work/candidate.json")"
check "the worker waits for the switch" "$repo/alarm-worker:v1" \
    "$(jq -r .images.alarm_worker "$work/candidate.json")"

"$release" switched "$work/candidate.json" v2 >"$work/switched.json"
check "the switch makes the candidate live" "green blue" \
    "$(jq -r '"\(.live) \(.idle)"' "$work/switched.json")"
check "the worker and the backup job follow the switch" "$repo/alarm-worker:v2 $repo/tools:v2" \
    "$(jq -r '"\(.images.alarm_worker) \(.images.tools)"' "$work/switched.json")"
check "no image the deployment does not have is added" "alarm_worker backup_uploader tools" \
    "$(jq -r '.images | keys | join(" ")' "$work/switched.json")"
check "images the release does not build stay" "$repo/uploader:3" \
    "$(jq -r .images.backup_uploader "$work/switched.json")"
check "the previous release stays on the idle color" "$repo/alarm-http:v1" \
    "$(jq -r '.http_images.blue' "$work/switched.json")"

TF_VAR_FILE=/secure/prod.tfvars "$release" plan "$work/switched.json" "$work/switch.plan"
check "a plan sets exactly the release's variables" \
    '{"http_images":{"blue":"gru.ocir.io/ns/smart-alarm/alarm-http:v1","green":"gru.ocir.io/ns/smart-alarm/alarm-http:v2"},"images":{"alarm_worker":"gru.ocir.io/ns/smart-alarm/alarm-worker:v2","backup_uploader":"gru.ocir.io/ns/smart-alarm/uploader:3","tools":"gru.ocir.io/ns/smart-alarm/tools:v2"},"live_color":"green"}' \
    "$(jq -cS . "$work/planned.json")"
args=$(cat "$work/plan-args")
if [[ $args == *"-out=$work/switch.plan"* && $args == *"-var-file=/secure/prod.tfvars"* && $args == *"-input=false"* ]]; then
    ok "the plan is saved, non-interactive, with the operator's tfvars"
else
    bad "plan arguments: $args"
fi

"$release" plan "$work/before.json" "$work/rollback.plan"
check "a rollback plans the state from before" "blue $repo/alarm-worker:v1" \
    "$(jq -r '"\(.live_color) \(.images.alarm_worker)"' "$work/planned.json")"

for tag in latest "" "v2;rm" "../v2"; do
    if "$release" candidate "$work/before.json" "$tag" >/dev/null 2>&1; then
        bad "the tag [$tag] is refused"
    else
        ok "the tag [$tag] is refused"
    fi
done
if SMOKE_COLOR=red "$here/smoke.sh" http://127.0.0.1:9 >/dev/null 2>&1; then
    bad "smoke.sh refuses a color that is not blue or green"
else
    ok "smoke.sh refuses a color that is not blue or green"
fi

if ((failures > 0)); then
    echo "$failures release test(s) failed"
    exit 1
fi
echo "release tests passed"
