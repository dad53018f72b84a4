#!/bin/sh
# The compose demo's traffic: a normal day in the hospital mesh, an incident,
# then the normal day again for a while. Every call goes through the caller's
# own Envoy (http://CALLER:10000, the Host header names the destination), so
# the destination's hallpass sees the caller's real SPIFFE identity.
#
# Every loop is bounded; the container exits when the script ends: 0 when
# every call got the answer it should, 1 otherwise.
#
#   NORMAL_DAY_MINUTES  normal traffic before the incident (default 12; the
#                       mesh-wide new-call-path rule compares with the hour
#                       before the last 10 minutes, see README.md)
#   AFTER_MINUTES       normal traffic after the incident (default 10)
set -u

NORMAL_DAY_MINUTES=${NORMAL_DAY_MINUTES:-12}
AFTER_MINUTES=${AFTER_MINUTES:-10}
ROUND_SECONDS=5
SERVICES="ehr-api lab-results pharmacy billing"
failures=0

log() { printf '%s traffic: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# request CALLER DESTINATION METHOD PATH [CURL ARGS...]: one call through the
# caller's Envoy. Prints "STATUS REASON" (000 = no answer; REASON is the
# x-hallpass-reason header, "-" when there is none).
request() {
    caller=$1 dest=$2 method=$3 path=$4
    shift 4
    out=$(curl -s -o /dev/null -D - -w 'status=%{http_code}\n' --max-time 5 \
        -X "$method" -H "Host: $dest" "$@" "http://$caller:10000$path" 2>/dev/null |
        tr -d '\r' | tr '[:upper:]' '[:lower:]')
    status=$(printf '%s\n' "$out" | sed -n 's/^status=//p')
    reason=$(printf '%s\n' "$out" | sed -n 's/^x-hallpass-reason: *//p')
    printf '%s %s\n' "${status:-000}" "${reason:--}"
}

# The normal day: what each caller is allowed to do (examples/policies/clinical-mesh.yaml).
# normal_round N: one call on each normal path; prints the six statuses.
NORMAL="200 200 200 200 200 200"
normal_round() {
    n=$1
    mrn=$(printf 'MRN-%05d' $((1000 + n % 500)))
    set -- \
        "$(request ehr-api lab-results GET "/patients/$mrn/results")" \
        "$(request ehr-api lab-results GET "/patients/$mrn/results/$n")" \
        "$(request pharmacy lab-results POST /lab.v1.Results/GetResult -H 'content-type: application/grpc')" \
        "$(request ehr-api billing POST /charges)" \
        "$(request ehr-api pharmacy POST /prescriptions)" \
        "$(request imaging-vendor lab-results POST /imaging/uploads)"
    statuses=""
    for answer in "$@"; do
        statuses="$statuses ${answer%% *}"
    done
    printf '%s\n' "${statuses# }"
}

# normal_check STATUSES: count a round in which a normal call failed.
normal_check() {
    if [ "$1" != "$NORMAL" ]; then
        log "  WRONG a normal call failed: $1 (expected $NORMAL)"
        failures=$((failures + 1))
    fi
}

# normal_minutes NAME MINUTES: normal rounds for that long, one log line a minute.
normal_minutes() {
    name=$1 rounds=$(($2 * 60 / ROUND_SECONDS)) i=0
    while [ "$i" -lt "$rounds" ]; do
        statuses=$(normal_round "$i")
        normal_check "$statuses"
        if [ $((i % (60 / ROUND_SECONDS))) -eq 0 ]; then
            log "$name, minute $((i * ROUND_SECONDS / 60)): $statuses"
        fi
        i=$((i + 1))
        sleep "$ROUND_SECONDS"
    done
}

# expect WHAT STATUS REASON ANSWER: compare one incident answer with the
# expected one and say so.
expect() {
    what=$1 want_status=$2 want_reason=$3 got=$4
    if [ "$got" = "$want_status $want_reason" ]; then
        log "  ok    $got  $what"
    else
        log "  WRONG $got  $what (expected $want_status $want_reason)"
        failures=$((failures + 1))
    fi
}

# 1. Wait until every sidecar is ready and every normal path answers (SPIRE
#    attestation and the first SDS certificates take a little while).
for svc in $SERVICES; do
    i=0
    until curl -sf --max-time 2 -o /dev/null "http://$svc:9902/readyz"; do
        i=$((i + 1))
        if [ "$i" -ge 90 ]; then log "hallpass of $svc not ready after 3 minutes"; exit 1; fi
        sleep 2
    done
done
i=0
until [ "$(normal_round 0)" = "$NORMAL" ]; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then log "the normal paths still fail after 2 minutes: $(normal_round 0)"; exit 1; fi
    sleep 2
done
log "every sidecar is ready; a normal day for $NORMAL_DAY_MINUTES minutes"

# 2. A normal day. hallpass learns its call paths in its first two minutes.
normal_minutes "normal day" "$NORMAL_DAY_MINUTES"

# 3. The incident.
log "incident: billing starts pulling lab results, 150 patients in about 3 minutes"
i=0
denied=0
while [ "$i" -lt 150 ]; do
    answer=$(request billing lab-results GET "$(printf '/patients/MRN-%05d/results' $((2000 + i)))")
    if [ "$answer" = "403 no_matching_rule" ]; then denied=$((denied + 1)); fi
    if [ $((i % ROUND_SECONDS)) -eq 0 ]; then normal_check "$(normal_round "$i")"; fi
    i=$((i + 1))
    sleep 1
done
if [ "$denied" -eq 150 ]; then
    log "  ok    403 no_matching_rule x150  billing -> lab-results GET /patients/{patient}/results"
else
    log "  WRONG only $denied of 150 billing reads were denied no_matching_rule"
    failures=$((failures + 1))
fi

log "incident: the retired fax gateway tries again"
for attempt in 1 2 3; do
    expect "fax-gateway -> lab-results GET /patients/{patient}/results (attempt $attempt)" 401 revoked \
        "$(request fax-gateway lab-results GET /patients/MRN-01001/results)"
    sleep 2
done

log "incident: the imaging vendor calls outside its grant"
expect "imaging-vendor -> lab-results GET /patients/{patient}/results" 403 no_matching_rule \
    "$(request imaging-vendor lab-results GET /patients/MRN-01001/results)"
expect "imaging-vendor -> lab-results GET /imaging/studies/{study} (pilot grant ran out)" 403 grant_expired \
    "$(request imaging-vendor lab-results GET /imaging/studies/7)"

log "incident: billing writes a prescription (pharmacy is in audit mode: let through, recorded)"
expect "billing -> pharmacy POST /prescriptions" 200 - \
    "$(request billing pharmacy POST /prescriptions)"

log "incident: the EHR bursts 300 reads of lab results (allowed, but a rate spike)"
i=0
allowed=0
while [ "$i" -lt 300 ]; do
    answer=$(request ehr-api lab-results GET "$(printf '/patients/MRN-%05d/results' $((3000 + i)))")
    if [ "${answer%% *}" = 200 ]; then allowed=$((allowed + 1)); fi
    i=$((i + 1))
done
if [ "$allowed" -eq 300 ]; then
    log "  ok    200 x300  ehr-api -> lab-results GET /patients/{patient}/results"
else
    log "  WRONG only $allowed of 300 burst reads were allowed"
    failures=$((failures + 1))
fi

# 4. The normal day goes on, so the dashboards show the incident against it.
log "the incident is over; normal traffic for $AFTER_MINUTES more minutes"
normal_minutes "after the incident" "$AFTER_MINUTES"

if [ "$failures" -eq 0 ]; then
    log "done: every call got the answer it should"
    exit 0
fi
log "done: $failures calls did not get the answer they should (see WRONG above)"
exit 1
