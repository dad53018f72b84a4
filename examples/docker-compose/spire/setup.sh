#!/bin/sh
# spire-setup: runs once per `docker compose up`, after both SPIRE servers are
# healthy and before the agents start.
#
#   1. Federation: hand each server the other's bundle once; from then on
#      they keep each other current over their bundle endpoints (port 8443).
#   2. Agents: a one-time join token per agent, written with the server's
#      bundle into the agent's config on the bootstrap volume.
#   3. Workloads: one registration entry per workload, selected by the Docker
#      label `hallpass.workload` of its containers (its Envoy and its hallpass).
#
# Safe to run again: existing entries are kept, and an agent that has already
# attested keeps its identity (the new token then simply expires unused).
set -eu
umask 077

HOSPITAL_SOCKET=/run/spire/hospital-server/api.sock
VENDOR_SOCKET=/run/spire/vendor-server/api.sock
TEMPLATES=/etc/spire-setup
OUT=/run/spire/bootstrap

HOSPITAL_TD=spiffe://hospital.example
VENDOR_TD=spiffe://imaging-vendor.example
HOSPITAL_NODE=$HOSPITAL_TD/node/compose-host
VENDOR_NODE=$VENDOR_TD/node/compose-host

log() { printf 'spire-setup: %s\n' "$*"; }

# srv SOCKET COMMAND SUBCOMMAND ARGS...: spire-server against one server.
srv() {
    socket=$1 command=$2 subcommand=$3
    shift 3
    spire-server "$command" "$subcommand" -socketPath "$socket" "$@"
}

# 1. Federation bootstrap.
srv "$HOSPITAL_SOCKET" bundle show -format spiffe >/tmp/hospital.bundle.json
srv "$VENDOR_SOCKET" bundle show -format spiffe >/tmp/vendor.bundle.json
srv "$HOSPITAL_SOCKET" bundle set -format spiffe -id "$VENDOR_TD" -path /tmp/vendor.bundle.json
srv "$VENDOR_SOCKET" bundle set -format spiffe -id "$HOSPITAL_TD" -path /tmp/hospital.bundle.json
log "federation bootstrapped: hospital.example <-> imaging-vendor.example"

# 2. Agent bootstrap: NAME SOCKET NODE_ID.
bootstrap_agent() {
    name=$1 socket=$2 node=$3
    token=$(srv "$socket" token generate -spiffeID "$node" -ttl 600 | sed -n 's/^Token: *//p')
    if [ -z "$token" ]; then
        log "no join token from the $name server"
        exit 1
    fi
    srv "$socket" bundle show -format pem >"$OUT/$name-bundle.pem.tmp"
    sed "s/__JOIN_TOKEN__/$token/" "$TEMPLATES/$name/agent.conf" >"$OUT/$name-agent.conf.tmp"
    chmod 0644 "$OUT/$name-bundle.pem.tmp"
    mv "$OUT/$name-bundle.pem.tmp" "$OUT/$name-bundle.pem"
    mv "$OUT/$name-agent.conf.tmp" "$OUT/$name-agent.conf"
    log "$name agent: join token and bundle written (node alias $node)"
}
bootstrap_agent hospital "$HOSPITAL_SOCKET" "$HOSPITAL_NODE"
bootstrap_agent vendor "$VENDOR_SOCKET" "$VENDOR_NODE"

# 3. Workload entries: register SERVER LABEL SPIFFE_ID [FEDERATES_WITH].
# The compose file puts `hallpass.workload: LABEL` on every container of a
# workload; tests/tests/compose_configs.rs checks these lines against it, the
# Envoy configs and the policy.
register() {
    server=$1 label=$2 id=$3 federates=${4:-}
    case $server in
        hospital) socket=$HOSPITAL_SOCKET parent=$HOSPITAL_NODE ;;
        vendor) socket=$VENDOR_SOCKET parent=$VENDOR_NODE ;;
        *) log "unknown server $server"; exit 1 ;;
    esac
    if srv "$socket" entry show -spiffeID "$id" | grep -q 'Entry ID'; then
        log "entry exists: $id"
        return 0
    fi
    set -- -parentID "$parent" -spiffeID "$id" -selector "docker:label:hallpass.workload:$label"
    if [ -n "$federates" ]; then
        set -- "$@" -federatesWith "$federates"
    fi
    srv "$socket" entry create "$@" >/dev/null
    log "entry created: $id <- docker:label:hallpass.workload:$label${federates:+ (federates with $federates)}"
}
register hospital ehr-api        spiffe://hospital.example/ns/clinical/sa/ehr-api
register hospital lab-results    spiffe://hospital.example/ns/clinical/sa/lab-results spiffe://imaging-vendor.example
register hospital pharmacy       spiffe://hospital.example/ns/pharmacy/sa/pharmacy
register hospital billing        spiffe://hospital.example/ns/billing/sa/billing
# Retired, and revoked in the policy, but nobody removed its SPIRE entry: it
# still gets a valid SVID. hallpass's revocation list is what stops it.
register hospital fax-gateway    spiffe://hospital.example/ns/legacy/sa/fax-gateway
register vendor   imaging-vendor spiffe://imaging-vendor.example/uploader spiffe://hospital.example

log "done"
