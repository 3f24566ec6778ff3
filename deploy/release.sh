#!/usr/bin/env bash
# The blue-green release of Smart Alarm on OCI (GUD-002), one step per command, so that the CI
# workflow (.github/workflows/release.yml) and an operator at a terminal run the same steps.
# deploy/README.md ("Blue-green releases") walks them; the state lives in Terraform's outputs.
#
#   release.sh state                     JSON of what runs: live and idle color, the alarm-http
#                                        image of each color, the other images
#   release.sh candidate STATE TAG       STATE with the idle color on $REGISTRY/alarm-http:TAG
#   release.sh switched STATE TAG        STATE with the colors swapped and the worker and tools
#                                        images on TAG (the worker follows the switch)
#   release.sh plan STATE PLANFILE       terraform plan that makes the deployment match STATE
#   release.sh changes PLANFILE          what that plan changes (address and actions), then
#                                        its digest on the last line: the approved plan and
#                                        the applied one must have the same
#   release.sh apply PLANFILE            terraform apply of that saved plan
#   release.sh migrate IMAGE             alarm-migrate up, then status --check (exit 1 while a
#                                        migration is pending), through an OCI Bastion session
#   release.sh smoke [COLOR]             deploy/smoke.sh against $API_BASE_URL; with COLOR, that
#                                        color through X-Deploy-Color and the preview token
#                                        (SMOKE_PREVIEW_TOKEN, else TF_VAR_preview_token)
#
# Environment: REGISTRY (e.g. gru.ocir.io/<namespace>/smart-alarm), API_BASE_URL
# (https://<api_hostname>), TF_VAR_FILE (a .tfvars with the non-secret inputs; the secret ones
# come as TF_VAR_*), OCI CLI credentials for `migrate`, CONTAINER_RUNTIME (podman or docker).
# Needs terraform, jq, and for `migrate` the oci CLI, ssh and the container runtime.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tf_dir=${TF_DIR:-$here/terraform}

say() { printf 'release: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}
tf() { terraform -chdir="$tf_dir" "$@"; }
other() { if [[ $1 == blue ]]; then echo green; else echo blue; fi; }
registry() { printf '%s' "${REGISTRY:?REGISTRY is the image repository, e.g. gru.ocir.io/<namespace>/smart-alarm}"; }
# A tag names one build: the same rule as the images variable's validation.
check_tag() { [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ && $1 != latest ]] || die "bad image tag: $1"; }

state() {
    local live
    live=$(tf output -raw live_color)
    jq -n --arg live "$live" --arg idle "$(other "$live")" \
        --argjson http "$(tf output -json http_images)" \
        --argjson images "$(tf output -json images)" \
        '{live: $live, idle: $idle, http_images: $http, images: $images}'
}

candidate() {
    local file=$1 tag=$2
    check_tag "$tag"
    jq --arg image "$(registry)/alarm-http:$tag" '.http_images[.idle] = $image' "$file"
}

switched() {
    local file=$1 tag=$2 repo
    check_tag "$tag"
    repo=$(registry)
    jq --arg repo "$repo" --arg tag "$tag" '
        {live: .idle, idle: .live, http_images: .http_images,
         images: (.images | with_entries(
            # The targets this repository builds move with the release; others stay (alarm-migrate
            # is not deployed: `migrate` runs its image from the pipeline).
            ({alarm_worker: "alarm-worker", tools: "tools"}[.key]) as $target
            | if $target then .value = "\($repo)/\($target):\($tag)" else . end))}' "$file"
}

plan() {
    local file=$1 out=$2 vars
    vars=$(mktemp --suffix=.tfvars.json)
    # Only the release's variables; everything else comes from TF_VAR_FILE and TF_VAR_*.
    jq '{live_color: .live, http_images: .http_images, images: .images}' "$file" >"$vars"
    local args=(plan -input=false -out="$out")
    # The release's file last: of two -var-file giving one variable, the last wins, and these
    # three variables are the release's to set.
    if [[ -n ${TF_VAR_FILE:-} ]]; then args+=(-var-file="$TF_VAR_FILE"); fi
    args+=(-var-file="$vars")
    tf "${args[@]}"
    rm -f "$vars"
}

# The plan's changes, one per line (address and actions), and their digest last. The digest
# covers the values too (before, after, unknown), so a plan that changes the same resources in
# another way has another digest; `show -json` carries sensitive values, and none is printed.
changes() {
    local plan
    plan=$(tf show -json "$1" | jq -cS '[.resource_changes[]?
        | select(.change.actions != ["no-op"])
        | {address, actions: .change.actions, before: .change.before, after: .change.after,
           after_unknown: .change.after_unknown}] | sort_by(.address)')
    jq -r '.[] | "\(.actions | join("+")) \(.address)"' <<<"$plan"
    printf 'changes-digest %s\n' "$(printf '%s' "$plan" | sha256sum | cut -d' ' -f1)"
}

apply() { tf apply -input=false "$1"; }

migrate() {
    local image=$1 runtime=${CONTAINER_RUNTIME:-podman}
    local bastion db_ip secret_id region dir session tunnel port=15432
    bastion=$(tf output -raw bastion_id)
    db_ip=$(tf output -raw database_endpoint_ip)
    secret_id=$(tf output -json secret_ids | jq -r '."database-url"')
    region=$(tf output -raw region)
    dir=$(mktemp -d)
    session=""
    tunnel=""
    # shellcheck disable=SC2329 # invoked by the trap
    cleanup() {
        # Every step runs whatever the one before did: a dead tunnel must not keep the session.
        if [[ -n $tunnel ]]; then kill "$tunnel" 2>/dev/null || true; fi
        if [[ -n $session ]]; then
            oci bastion session delete --session-id "$session" --force >/dev/null 2>&1 || true
        fi
        rm -rf "$dir" || true
    }
    trap cleanup EXIT
    ssh-keygen -q -t ed25519 -N '' -f "$dir/key"
    say "opening a bastion session to PostgreSQL ($db_ip:5432)"
    session=$(oci bastion session create-port-forwarding --bastion-id "$bastion" \
        --target-private-ip "$db_ip" --target-port 5432 --session-ttl 1800 \
        --display-name "release-migrate" --ssh-public-key-file "$dir/key.pub" \
        --wait-for-state SUCCEEDED --query 'data.resources[0].identifier' --raw-output)
    ssh -i "$dir/key" -o StrictHostKeyChecking=accept-new -o ExitOnForwardFailure=yes -N \
        -L "127.0.0.1:$port:$db_ip:5432" -p 22 "$session@host.bastion.$region.oci.oraclecloud.com" &
    tunnel=$!
    local tries=0
    until (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        tries=$((tries + 1))
        ((tries < 60)) || die "the bastion tunnel did not open within 60 s"
        kill -0 "$tunnel" 2>/dev/null || die "ssh to the bastion ended"
        sleep 1
    done
    # The URL holds the application's password: it goes to the container through the
    # environment, never on a command line, and CI masks it.
    DATABASE_URL=$(oci secrets secret-bundle get --secret-id "$secret_id" \
        --query 'data."secret-bundle-content".content' --raw-output | base64 -d)
    local credentials=${DATABASE_URL#*://}
    credentials=${credentials%%@*}
    DATABASE_URL=${DATABASE_URL/@$db_ip:5432/@127.0.0.1:$port}
    if [[ -n ${GITHUB_ACTIONS:-} ]]; then
        # Each form the password could be printed in: alone, and inside either URL.
        echo "::add-mask::${credentials#*:}"
        echo "::add-mask::$DATABASE_URL"
    fi
    export DATABASE_URL
    say "alarm-migrate up ($image)"
    "$runtime" run --rm --network=host -e DATABASE_URL "$image" up
    say "alarm-migrate status --check: the switch waits for every migration"
    "$runtime" run --rm --network=host -e DATABASE_URL "$image" status --check
}

smoke() {
    local base=${API_BASE_URL:?API_BASE_URL is the public base URL, e.g. https://api.example.com.br}
    if [[ -n ${1:-} ]]; then
        SMOKE_COLOR=$1 SMOKE_PREVIEW_TOKEN=${SMOKE_PREVIEW_TOKEN:-${TF_VAR_preview_token:-}} \
            "$here/smoke.sh" "$base"
    else
        "$here/smoke.sh" "$base"
    fi
}

command=${1:-}
shift || true
case $command in
    state) state ;;
    candidate) candidate "${1:?STATE}" "${2:?TAG}" ;;
    switched) switched "${1:?STATE}" "${2:?TAG}" ;;
    plan) plan "${1:?STATE}" "${2:?PLANFILE}" ;;
    changes) changes "${1:?PLANFILE}" ;;
    apply) apply "${1:?PLANFILE}" ;;
    migrate) migrate "${1:?IMAGE}" ;;
    smoke) smoke "${1:-}" ;;
    *) die "usage: release.sh state|candidate|switched|plan|changes|apply|migrate|smoke (see the head of this file)" ;;
esac
