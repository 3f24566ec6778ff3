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
    show)
        # A plan as \`show -json\` gives it: a no-op, two changes out of order, and a
        # sensitive value that must never be printed.
        printf '%s' '{"resource_changes":[
          {"address":"module.worker.oci_container_instances_container_instance.worker[0]","change":{"actions":["delete","create"],"after":{"x":"SECRET-VALUE"}}},
          {"address":"module.vault.oci_vault_secret.this[\"jwt\"]","change":{"actions":["no-op"]}},
          {"address":"module.api_gateway[0].oci_apigateway_deployment.api","change":{"actions":["update"]}}]}' ;;
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
# The last -var-file wins in Terraform: the release's own file must come after the operator's.
if [[ $args =~ -var-file=/secure/prod.tfvars.*-var-file=[^\ ]*\.tfvars\.json ]]; then
    ok "the release's variables come last, so an operator's tfvars cannot override them"
else
    bad "var-file order: $args"
fi

changes=$("$release" changes "$work/switch.plan")
check "changes lists what changes, sorted, without no-ops" \
    "update module.api_gateway[0].oci_apigateway_deployment.api
delete+create module.worker.oci_container_instances_container_instance.worker[0]" \
    "$(grep -v '^changes-digest ' <<<"$changes")"
if [[ $changes == *SECRET-VALUE* ]]; then bad "changes printed a value"; else ok "changes prints no value"; fi
digest=$(sed -n 's/^changes-digest //p' <<<"$changes")
check "the same plan has the same digest" "$digest" \
    "$("$release" changes "$work/switch.plan" | sed -n 's/^changes-digest //p')"
if [[ $digest =~ ^[0-9a-f]{64}$ ]]; then ok "the digest is a sha256"; else bad "digest: $digest"; fi
# The same resources changed another way (another value): another digest.
sed -i 's/SECRET-VALUE/OTHER-VALUE/' "$work/bin/terraform"
other=$("$release" changes "$work/switch.plan" | sed -n 's/^changes-digest //p')
if [[ $other != "$digest" ]]; then
    ok "a change of value changes the digest"
else
    bad "a change of value kept the digest"
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
token=abcdefghijklmnopqrstuvwxyz0123456789
for case in "red $token" "green short" "green "; do
    read -r color preview <<<"$case"
    if SMOKE_COLOR=$color SMOKE_PREVIEW_TOKEN=${preview:-} "$here/smoke.sh" http://127.0.0.1:9 \
        >/dev/null 2>&1; then
        bad "smoke.sh refuses color [$color] with token [${preview:-}]"
    else
        ok "smoke.sh refuses color [$color] with token [${preview:-}]"
    fi
done

# The CI credentials step: owner-only files, and a tfvars that sets what the release owns refused.
mkdir -p "$work/home" "$work/tf"
creds() {
    HOME=$work/home TF_DIR=$work/tf TF_VAR_FILE=$work/prod.tfvars OCI_USER_OCID=ocid1.user.x \
        OCI_TENANCY_OCID=ocid1.tenancy.x OCI_FINGERPRINT=aa:bb OCI_PRIVATE_KEY=PEM-KEY \
        TF_BACKEND_HCL='bucket = "state"' TF_VARS=$1 "$here/ci-credentials.sh" >/dev/null 2>&1
}
if creds 'api_hostname = "api.example.com.br"'; then
    check "the deployer's key is written owner-only" "600 PEM-KEY" \
        "$(stat -c %a "$work/home/.oci/deployer.pem") $(cat "$work/home/.oci/deployer.pem")"
    check "the OCI config names it" "key_file=$work/home/.oci/deployer.pem" \
        "$(grep key_file "$work/home/.oci/config")"
    check "the backend and the tfvars are written" 'bucket = "state" api_hostname = "api.example.com.br"' \
        "$(cat "$work/tf/backend.hcl") $(cat "$work/prod.tfvars")"
else
    bad "ci-credentials.sh writes the credentials"
fi
if creds 'live_color = "green"'; then
    bad "a tfvars that sets live_color is refused"
else
    ok "a tfvars that sets live_color is refused"
fi

if ((failures > 0)); then
    echo "$failures release test(s) failed"
    exit 1
fi
echo "release tests passed"
