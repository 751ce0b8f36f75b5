#!/usr/bin/env bash
# bench/daemon/cli_vs_lp.sh — submissions/s through a command-line client, one process
# per job, for the same N small jobs: `labelctl submit` to labeld (its printer paused,
# so nothing prints) against `lp` to a CUPS raw queue (the queue stopped with
# `cupsdisable`, so nothing prints either). Both spools are on the same disk.
#
# CUPS runs as a private cupsd (-f, its own cupsd.conf / cups-files.conf, unix socket,
# spool, logs and state under a temp directory; nothing of /etc/cups is touched),
# twice: with CUPS's default `SyncOnClose No` (spool files not fsynced) and with
# `SyncOnClose Yes` (fsync before a job counts as queued, closer to labeld, whose reply
# comes after the SQLite commit). Every process started here is stopped by its pid.
#
# Needs: target/release/{labeld,labelctl} (cargo build --release --bin labeld --bin
# labelctl), the `cups` package (cupsd, lp, lpadmin, cupsdisable; bench/cups/setup.sh
# installs it). Knobs: N (jobs per run, default 300), RUNS (default 3), PAR (parallel
# submitters via xargs -P, default "1 8").
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-300}
RUNS=${RUNS:-3}
PAR=${PAR:-"1 8"}
LABELD=target/release/labeld
LABELCTL=target/release/labelctl
for f in "$LABELD" "$LABELCTL" /usr/sbin/cupsd /usr/bin/lp /usr/sbin/lpadmin /usr/sbin/cupsdisable; do
  [ -x "$f" ] || { echo "missing $f (see the header)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/labeld-bench-cli.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

echo "machine: $(nproc) cpus, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cups $(dpkg-query -W -f='${Version}' cups 2>/dev/null || echo '?'); $N jobs per run; work dir $WORK"

# One small job for both: the issue's 4x6 address label (labeld allocates the serial);
# CUPS gets that label's ZPL as a raw job (4 KB).
JOB=$WORK/job.json
cat > "$JOB" <<'EOF'
{"template": "address", "size": "4x6",
 "imb": {"mailer_id": "123456", "service_type": "270", "routing": "987654321"},
 "to": ["JOHN Q PUBLIC", "123 MAIN ST", "ANYTOWN ST 98765-4321"],
 "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"]}
EOF
# (Rendered offline with a fixed tracking code: an allocated serial is labeld's to fill in.)
ZPL=$WORK/job.zpl
sed 's/"mailer_id": "123456", "service_type": "270"/"tracking": "00270123456200800001"/' "$JOB" \
  > "$WORK/job-tracking.json"
"$LABELCTL" render "$WORK/job-tracking.json" --model zpl-203 -o "$ZPL" >/dev/null
echo "raw job for lp: $(wc -c < "$ZPL") bytes of ZPL"

# ---- labeld ----------------------------------------------------------------------
mkdir -p "$WORK/labeld"
cat > "$WORK/labeld.toml" <<EOF
[daemon]
state_dir = "$WORK/labeld"
runtime_dir = "run"
requests = ["ipc://requests.sock"]
events = ["ipc://events.sock"]

[[serial_range]]
mailer_id = "123456"
first = 1
last = 999999999

[[printer]]
name = "zpl-file"
model = "zpl-203"
uri = "file:zpl/"
EOF
env -u LABELD_STATE_DIR -u STATE_DIRECTORY -u RUNTIME_DIRECTORY -u NOTIFY_SOCKET \
  "$LABELD" --config "$WORK/labeld.toml" 2> "$WORK/labeld.log" &
PIDS+=($!)
export LABELD_ENDPOINT="ipc://$WORK/labeld/run/requests.sock"
export LABELD_EVENTS="ipc://$WORK/labeld/run/events.sock"
for _ in $(seq 100); do "$LABELCTL" health >/dev/null 2>&1 && break; sleep 0.1; done
"$LABELCTL" pause zpl-file >/dev/null

# ---- a private cupsd ---------------------------------------------------------------
start_cupsd() {  # $1 = SyncOnClose value; sets CUPS_SERVER and CUPSD_PID
  local c=$WORK/cups-$1
  mkdir -p "$c"/{etc/ppd,spool/tmp,cache,state,log}
  chmod 0755 "$c" "$c"/etc "$c"/state "$c"/cache
  chmod 0710 "$c"/spool; chmod 1770 "$c"/spool/tmp
  chgrp lp "$c"/spool "$c"/spool/tmp 2>/dev/null || true
  cat > "$c/etc/cupsd.conf" <<EOF
Listen $c/cups.sock
LogLevel warn
MaxJobs 0
MaxJobsPerPrinter 0
MaxJobsPerUser 0
PreserveJobHistory No
Browsing No
WebInterface No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
EOF
  cat > "$c/etc/cups-files.conf" <<EOF
ServerRoot $c/etc
RequestRoot $c/spool
TempDir $c/spool/tmp
CacheDir $c/cache
StateDir $c/state
ErrorLog $c/log/error_log
AccessLog $c/log/access_log
PageLog $c/log/page_log
FileDevice Yes
SyncOnClose $1
SystemGroup root
EOF
  /usr/sbin/cupsd -f -c "$c/etc/cupsd.conf" -s "$c/etc/cups-files.conf" &
  CUPSD_PID=$!
  PIDS+=("$CUPSD_PID")
  export CUPS_SERVER=$c/cups.sock
  for _ in $(seq 100); do [ -S "$c/cups.sock" ] && lpstat -r >/dev/null 2>&1 && break; sleep 0.1; done
  lpstat -r >/dev/null || { cat "$c/log/error_log" >&2; exit 1; }
  lpadmin -p raw -E -v file:///dev/null 2>&1 | grep -v -i deprecated || true
  cupsdisable raw
}

# ---- timing ------------------------------------------------------------------------
now() { date +%s.%N; }
rate() { echo "scale=1; $1 / ($3 - $2)" | bc; }

time_labelctl() {  # $1 = parallel, $2 = run
  local t0 t1
  t0=$(now)
  seq "$N" | xargs -P "$1" -I{} "$LABELCTL" submit "$JOB" --printer zpl-file \
    --job-id "cli-p$1-r$2-{}" >/dev/null
  t1=$(now)
  echo "RESULT cli labelctl-submit parallel=$1 run=$2: $N jobs in $(echo "$t1 - $t0" | bc) s = $(rate "$N" "$t0" "$t1") jobs/s; load $(cut -d' ' -f1-3 /proc/loadavg)"
}

time_lp() {  # $1 = SyncOnClose, $2 = parallel, $3 = run
  local t0 t1
  t0=$(now)
  seq "$N" | xargs -P "$2" -I{} lp -d raw -o raw -t "job-{}" "$ZPL" >/dev/null
  t1=$(now)
  echo "RESULT cli lp SyncOnClose=$1 parallel=$2 run=$3: $N jobs in $(echo "$t1 - $t0" | bc) s = $(rate "$N" "$t0" "$t1") jobs/s; load $(cut -d' ' -f1-3 /proc/loadavg)"
}

for sync in No Yes; do
  start_cupsd "$sync"
  for par in $PAR; do
    for run in $(seq "$RUNS"); do
      # Interleaved: labeld, then CUPS, run by run.
      [ "$sync" = No ] && time_labelctl "$par" "$run"
      time_lp "$sync" "$par" "$run"
    done
  done
  queued=$(lpstat -o raw | wc -l)
  echo "  cups SyncOnClose=$sync: $queued jobs queued (stopped queue)"
  kill "$CUPSD_PID"; wait "$CUPSD_PID" 2>/dev/null || true
  unset CUPS_SERVER
done
echo "  labeld: $("$LABELCTL" health --json 2>/dev/null | python3 -c 'import json,sys; print("open_labels", json.load(sys.stdin).get("open_labels"))' 2>/dev/null || echo '?')"
