#!/usr/bin/env bash
# bench/pixel: wrk against the pixel endpoint (/o/<token>.gif) and, in the same run, against the bare baseline
# (/bench/bare/<token>.gif: same bytes and headers, no lookup, no record) and the verdict step (/bench/verdict/<token>.gif:
# the pixel's code with the record left out). See README.md beside this file.
#
#   bench/pixel/run.sh [--no-build] [--strict] [--keep]
#
#   --no-build  use the Release build that is there
#   --strict    exit 3 when a target (ratio >= 0.7, p99 < 10 ms at half the peak rate) is missed
#   --keep      keep the temporary folder (database, server log, wrk output)
#
# Knobs (environment): WRK_THREADS (2), WRK_SWEEP ("32 128 256 512": the connection counts the peak is looked for at),
# WRK_CONNECTIONS (one count instead of the sweep), WRK_HALF_CONNECTIONS (the half-rate runs' count; default: the
# sweep's largest), WARMUP_S (6), PEAK_S (10, each peak run), HALF_S (15),
# GRACE_S (1, extra seconds wrk runs after the tracked requests stop, to collect the last answers).
# Exit: 0 done (targets may still be FAIL in the table), 1 set-up failed or events recorded != 2xx answered,
# 3 a target missed with --strict.

# shellcheck disable=SC2016  # the single-quoted node programs are JavaScript, not shell
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

BUILD=1 STRICT=0 KEEP=0
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    --strict) STRICT=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $a" >&2; exit 1 ;;
  esac
done

log() { printf '[bench/pixel %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

THREADS=${WRK_THREADS:-2}
# Peak throughput is what a server answers when the load is enough to keep it busy. With a fixed number of wrk
# connections that each wait for their answer, the rate is connections / latency: too few connections measure the
# latency instead (the pixel waits for its group commit, so it needs more connections than the bare endpoint to be
# kept busy). So the peak of each endpoint is looked for over a sweep of connection counts.
SWEEP=${WRK_CONNECTIONS:-${WRK_SWEEP:-32 128 256 512}}
read -r -a LEVELS <<<"${SWEEP//$'\n'/ }"
[ "${#LEVELS[@]}" -gt 0 ] || die "WRK_SWEEP is empty"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "WRK_THREADS is not a number: $THREADS"
for c in "${LEVELS[@]}"; do
  [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "not a connection count: $c"
  (( c >= THREADS )) || die "wrk needs at least as many connections as threads: $c < $THREADS"
done
[ "$(printf '%s\n' "${LEVELS[@]}" | sort -u | wc -l)" = "${#LEVELS[@]}" ] || die "a connection count is repeated in: $SWEEP"
HALF_CONNS_SET=${WRK_HALF_CONNECTIONS:-}
if [ -n "$HALF_CONNS_SET" ]; then
  [[ "$HALF_CONNS_SET" =~ ^[1-9][0-9]*$ ]] && (( HALF_CONNS_SET >= THREADS )) || die "not a usable WRK_HALF_CONNECTIONS: $HALF_CONNS_SET"
fi
CONNS=${LEVELS[0]}
WARMUP_S=${WARMUP_S:-6}
PEAK_S=${PEAK_S:-10}
HALF_S=${HALF_S:-15}
GRACE_S=${GRACE_S:-1}
RECIPIENTS=200
UA='Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)'

# ---- tools -------------------------------------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=0
need() { # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq >&2; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >&2
  command -v "$1" >/dev/null 2>&1 || die "$1 not found after installing $2"
}
need wrk wrk
need sqlite3 sqlite3
need node nodejs
need curl curl
command -v dotnet >/dev/null 2>&1 || die "dotnet not found"

# ---- work folder, build --------------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/et-bench-pixel.XXXXXX)
SERVER_PID=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SERVER_DLL="$REPO/src/EmailTracking.Server/bin/Release/net10.0/EmailTracking.Server.dll"
CLI_DLL="$REPO/src/EmailTracking.Cli/bin/Release/net10.0/et.dll"
if [ "$BUILD" = 1 ]; then
  log "building Release"
  dotnet build "$REPO/EmailTracking.sln" -c Release -nologo -v quiet >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; die "build failed"; }
fi
if [ ! -f "$SERVER_DLL" ] || [ ! -f "$CLI_DLL" ]; then die "no Release build; run without --no-build"; fi

# ---- server ------------------------------------------------------------------------------------------------------
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
BASE="http://127.0.0.1:$PORT"
DB="$WORK/bench.db"

export Database__Provider=Sqlite
export ConnectionStrings__Default="Data Source=$DB"
export Bench__BaselineEndpoint=true
export Logging__LogLevel__Default=Warning
export ASPNETCORE_ENVIRONMENT=Production
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
APPLE_RELAY="$REPO/../shared/data/apple-relay"
if [ -d "$APPLE_RELAY" ]; then
  Tracking__AppleRelay__Directory=$(cd "$APPLE_RELAY" && pwd)
  export Tracking__AppleRelay__Directory
else
  log "note: $APPLE_RELAY not found; the classifier runs without Apple's relay ranges"
fi

log "starting the server on $BASE (work dir $WORK)"
(cd "$WORK" && exec dotnet "$SERVER_DLL" --urls "$BASE" >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for i in $(seq 300); do
  if curl -fsS "$BASE/healthz" 2>/dev/null | grep -qx ok; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "server exited"; }
  [ "$i" = 300 ] && { cat "$WORK/server.log" >&2; die "server not healthy after 60 s"; }
  sleep 0.2
done
curl -fsS -o /dev/null "$BASE/bench/bare/x.gif" || die "GET /bench/bare/... failed: is Bench:BaselineEndpoint honoured?"

# ---- user, message, tokens -----------------------------------------------------------------------------------------
API_TOKEN=$(cd "$WORK" && dotnet "$CLI_DLL" users add --email bench@sender.test --team Bench --plan team 2>"$WORK/cli.err" \
  | grep -o 'et_[A-Za-z0-9_-]*' | head -n1) || true
[ -n "$API_TOKEN" ] || { cat "$WORK/cli.err" >&2; die "could not create the bench user"; }

RECIPIENTS=$RECIPIENTS node -e '
  const n = +process.env.RECIPIENTS;
  process.stdout.write(JSON.stringify({
    from: "bench@sender.test", subject: "bench", perRecipient: true,
    sentAt: new Date(Date.now() - 3600e3).toISOString(),
    to: Array.from({ length: n }, (_, i) => `r${i}@x.test`), html: "<p>hi</p>" }));' >"$WORK/message.json"
STATUS=$(curl -sS -o "$WORK/message-response.json" -w '%{http_code}' -X POST "$BASE/api/messages" \
  -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' --data-binary @"$WORK/message.json")
[ "$STATUS" = 201 ] || { cat "$WORK/message-response.json" >&2; die "POST /api/messages answered $STATUS"; }
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const c of r.copies) console.log(new URL(c.pixelUrl).pathname.replace(/^\/o\//, ""));' \
  "$WORK/message-response.json" >"$WORK/tokens.txt"
[ "$(grep -c . "$WORK/tokens.txt")" = "$RECIPIENTS" ] || die "expected $RECIPIENTS pixel tokens"
FIRST=$(head -n1 "$WORK/tokens.txt")
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/o/$FIRST")" = 200 ] || die "pixel did not answer 200"

# ---- wrk scripts ---------------------------------------------------------------------------------------------------
write_script() { # write_script PREFIX FILE
  { echo "paths = {"; sed "s|^|  \"$1|; s|\$|\",|" "$WORK/tokens.txt"; echo "}"; cat "$HERE/rotate.lua"; } >"$2"
}
write_script /o/ "$WORK/pixel.lua"
write_script /bench/bare/ "$WORK/bare.lua"
write_script /bench/verdict/ "$WORK/verdict.lua"

count_events() { sqlite3 "$DB" 'SELECT COUNT(*) FROM Events;'; }
# The server's garbage-collector totals (bytes allocated, collections, pause time) as JSON.
gc_figures() { curl -fsS "$BASE/bench/gc" || die "GET /bench/gc failed"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
child_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; } # reaped children of this shell: wrk
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
HZ=$(getconf CLK_TCK)

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
# run_wrk LABEL ENDPOINT(pixel|bare|verdict) KIND(warmup|peak|half) SECONDS CONNECTIONS [RATE]
run_wrk() {
  local label=$1 endpoint=$2 kind=$3 secs=$4 conns=$5 rate=${6:-}
  local s0 b0 w0 t0 s1 b1 w1 t1 line g0 g1
  g0=$(gc_figures); s0=$(cpu_ticks "$SERVER_PID"); b0=$(busy_ticks); w0=$(child_ticks); t0=$(date +%s.%N)
  ETB_LABEL=$label ETB_ACTIVE_S=$secs ETB_RATE=$rate ETB_THREADS=$THREADS \
    wrk -t"$THREADS" -c"$conns" -d"$((secs + GRACE_S))s" --latency -H "User-Agent: $UA" \
      -s "$WORK/$endpoint.lua" "$BASE" >"$WORK/$label.out" 2>&1 || { cat "$WORK/$label.out" >&2; die "wrk failed ($label)"; }
  s1=$(cpu_ticks "$SERVER_PID"); b1=$(busy_ticks); w1=$(child_ticks); t1=$(date +%s.%N); g1=$(gc_figures)
  line=$(grep '^ETB ' "$WORK/$label.out" | tail -n1 | cut -c5-) || true
  [ -n "$line" ] || { cat "$WORK/$label.out" >&2; die "no result line from wrk ($label)"; }
  node -e '
    const [line, endpoint, kind, conns, rate, s0, s1, b0, b1, w0, w1, t0, t1, hz, g0, g1] = process.argv.slice(1);
    const r = JSON.parse(line), wall = t1 - t0;
    const server = (s1 - s0) / hz / wall, machine = (b1 - b0) / hz / wall, wrk = (w1 - w0) / hz / wall;
    // Every request the server answered in the run (the tracked ones and the /healthz of the drain) shares the GC.
    const a = JSON.parse(g0), b = JSON.parse(g1), requests = Math.max(1, r.ok + r.other + r.tail);
    Object.assign(r, { endpoint, kind, connections: +conns, target_rps: rate ? +rate : null, server_cores: server,
      wrk_cores: wrk, machine_cores: machine, other_cores: Math.max(0, machine - server - wrk),
      alloc_bytes_per_request: (b.allocatedBytes - a.allocatedBytes) / requests, gen0: b.gen0 - a.gen0,
      gen1: b.gen1 - a.gen1, gen2: b.gen2 - a.gen2, gc_pause_ms: b.pauseMs - a.pauseMs });
    console.log(JSON.stringify(r));' \
    "$line" "$endpoint" "$kind" "$conns" "$rate" "$s0" "$s1" "$b0" "$b1" "$w0" "$w1" "$t0" "$t1" "$HZ" "$g0" "$g1" >>"$RESULTS"
  tail -n1 "$RESULTS" | node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.error(`[bench/pixel] ${r.label.padEnd(18)} ${String(Math.round(r.rps)).padStart(6)} req/s` +
      `  p50 ${(r.p50_us / 1000).toFixed(2)} ms  p99 ${(r.p99_us / 1000).toFixed(2)} ms  2xx ${r.ok}` +
      (r.other ? `  non-2xx ${r.other}` : "") +
      `  cores: server ${r.server_cores.toFixed(2)} wrk ${r.wrk_cores.toFixed(2)} other ${r.other_cores.toFixed(2)}`);'
}

# ---- runs ----------------------------------------------------------------------------------------------------------
# Let the server finish starting (JIT, first queries), and say so when something else keeps the machine busy:
# the numbers only mean something on a quiet machine.
for _ in $(seq 15); do
  s0=$(cpu_ticks "$SERVER_PID"); b0=$(busy_ticks); sleep 1; s1=$(cpu_ticks "$SERVER_PID"); b1=$(busy_ticks)
  SERVER_IDLE=$(( (s1 - s0) * 100 / HZ )); OTHER_BUSY=$(( (b1 - b0 - s1 + s0) * 100 / HZ ))
  if [ "$SERVER_IDLE" -le 10 ] && [ "$OTHER_BUSY" -le 25 ]; then break; fi
done
if [ "$OTHER_BUSY" -gt 25 ]; then
  log "warning: other processes keep ${OTHER_BUSY}% of a core busy; the numbers will be noisy"
fi
EVENTS_BEFORE=$(count_events)
# Warm-up: the JIT needs some seconds of load before the code runs at its final tier.
log "wrk -t$THREADS -c$CONNS; warm-up bare, verdict, pixel, bare, ${WARMUP_S}s each"
run_wrk warmup-bare-1 bare warmup "$WARMUP_S" "$CONNS"
run_wrk warmup-verdict verdict warmup "$WARMUP_S" "$CONNS"
run_wrk warmup-pixel pixel warmup "$WARMUP_S" "$CONNS"
run_wrk warmup-bare-2 bare warmup "$WARMUP_S" "$CONNS"

# At each connection count, bare and pixel twice each around the verdict step (bare pixel verdict pixel bare), so that
# a slow or fast stretch of the machine falls on both; the peak of an endpoint is its best run over the sweep.
log "peak: -c ${LEVELS[*]}, ${PEAK_S}s each, order bare pixel verdict pixel bare at each"
for c in "${LEVELS[@]}"; do
  run_wrk "peak-c$c-bare-1" bare peak "$PEAK_S" "$c"
  run_wrk "peak-c$c-pixel-1" pixel peak "$PEAK_S" "$c"
  run_wrk "peak-c$c-verdict" verdict peak "$PEAK_S" "$c"
  run_wrk "peak-c$c-pixel-2" pixel peak "$PEAK_S" "$c"
  run_wrk "peak-c$c-bare-2" bare peak "$PEAK_S" "$c"
done

# Half rate, paced, with the sweep's largest connection count unless WRK_HALF_CONNECTIONS says otherwise. Plenty of
# connections matter here: wrk times a request from when it is sent, and when the server stalls with every connection
# waiting, the next scheduled request has no connection to go on; it goes late (or not at all: rotate.lua drops a
# backlog of more than 10 ms), and the stall's tail is missing from the p99. N connections keep the schedule through a
# stall of about N / rate seconds less the usual latency (connections already waiting cannot take slots).
HALF=$(node -e '
  const rs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const best = rs.filter(r => r.endpoint === "pixel" && r.kind === "peak").sort((a, b) => b.rps - a.rps)[0];
  if (!best || !(best.rps > 0)) process.exit(1);
  console.log(Math.max(1, Math.round(best.rps / 2)));' "$RESULTS") || die "no pixel peak to take half of"
HALF_RATE=$HALF
HALF_CONNS=${HALF_CONNS_SET:-$(printf '%s\n' "${LEVELS[@]}" | sort -n | tail -n1)}
log "half of the pixel peak: $HALF_RATE req/s, -c$HALF_CONNS, ${HALF_S}s each"
run_wrk half-pixel pixel half "$HALF_S" "$HALF_CONNS" "$HALF_RATE"
run_wrk half-bare bare half "$HALF_S" "$HALF_CONNS" "$HALF_RATE"

EVENTS_AFTER=$(count_events)

# ---- report --------------------------------------------------------------------------------------------------------
mkdir -p "$HERE/results"
set +e
CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
node "$HERE/report.js" "$RESULTS" \
  --events "$((EVENTS_AFTER - EVENTS_BEFORE))" --nproc "$(nproc)" --cpu "${CPU_MODEL:-unknown}" \
  --commit "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --durability "${Database__SqliteDurability:-Full}" \
  --wrk "wrk -t$THREADS, warm-up -c$CONNS ${WARMUP_S}s x4 (bare verdict pixel bare), peak at -c ${LEVELS[*]} ${PEAK_S}s each (bare pixel verdict pixel bare), half rate -c$HALF_CONNS ${HALF_S}s" \
  >"$WORK/latest.md"
RC=$?
set -e
cat "$WORK/latest.md"
cp "$WORK/latest.md" "$HERE/results/latest.md"
log "table written to bench/pixel/results/latest.md"
# report.js: 0 all pass, 1 accounting mismatch or errors, 2 a target missed
case "$RC" in
  0) exit 0 ;;
  2) if [ "$STRICT" = 1 ]; then exit 3; else exit 0; fi ;;
  *) exit 1 ;;
esac
