#!/usr/bin/env bash
# Runs every test. Installs what a fresh Debian machine lacks (apt and npm packages), starts the services the tests
# need (a throwaway PostgreSQL cluster, a local Postfix + Dovecot mail loop), stops them afterwards, and ends with the
# runner's summary.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

log() { printf '\n== %s\n' "$*"; }

# --- packages ---------------------------------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v postfix >/dev/null 2>&1 || missing+=(postfix)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
ls /usr/lib/dovecot/modules/lib90_sieve_plugin.so >/dev/null 2>&1 || missing+=(dovecot-sieve)
# Word and PowerPoint to PDF (LibreOffice headless), page thumbnails (Poppler's pdftoppm), per-page resources (qpdf).
ls /usr/lib/libreoffice/program/libswlo.so >/dev/null 2>&1 || missing+=(libreoffice-writer-nogui)
ls /usr/lib/libreoffice/program/libsdlo.so >/dev/null 2>&1 || missing+=(libreoffice-impress-nogui)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v qpdf >/dev/null 2>&1 || missing+=(qpdf)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  # Postfix asks what kind of mail system this is: a local-only one (tests/scripts/mail.sh configures the rest).
  printf '%s\n' "postfix postfix/main_mailer_type select Local only" "postfix postfix/mailname string example.test" \
    | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- services ---------------------------------------------------------------------------------------------------
# shellcheck source=tests/scripts/postgres.sh
source tests/scripts/postgres.sh
# shellcheck source=tests/scripts/mail.sh
source tests/scripts/mail.sh
cleanup() { mail_stop; pg_stop; }
trap cleanup EXIT
log "starting PostgreSQL"
pg_start
log "starting the mail loop (Postfix + Dovecot)"
mail_start

# --- build and test ---------------------------------------------------------------------------------------------
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The front ends are built here, before dotnet, so a failing type check or unit test fails the run; the server
# project's own npm target (BuildWebTaskpane) then finds wwwroot/viewer and wwwroot/addin newer than their sources and
# does nothing.
log "building and testing web-taskpane (npm)"
(
  cd web-taskpane
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund
    touch node_modules # npm ci may keep the folder's old time; mark it as newer than the lock file it came from
  fi
  npm run build
  npm test
)
# Fixture tools the C# tests call (a password-protected Office file: tests/tools/encrypt-office.mjs).
(
  cd tests/tools
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund
    touch node_modules
  fi
)
log "building (warnings are errors)"
dotnet build EmailTracking.sln -c Release -warnaserror -nologo -v quiet

results="$root/artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"
export ET_CHROMIUM=${ET_CHROMIUM:-$(command -v chromium)}
export ET_SCREENSHOTS="$root/artifacts/screenshots"
log "running tests"
# The session limit catches a hung test within CI's own limit; a slow machine should not turn into a failure (the
# suite takes 17 to 19 minutes on two cores, see the README).
set +e
dotnet test tests/EmailTracking.Tests -c Release --no-build --nologo \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" --results-directory "$results" \
  -- RunConfiguration.TestSessionTimeout=2400000 2>&1 | tee "$results/console.log"
status=${PIPESTATUS[0]}
set -e

# --- summary ----------------------------------------------------------------------------------------------------
trx="$results/results.trx"
if [ -f "$trx" ]; then
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { printf '%s' "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$(get passed); failed=$(get failed); total=$(get total); executed=$(get executed)
  skipped=$(( ${total:-0} - ${executed:-0} ))
  if [ "${failed:-0}" != 0 ]; then
    # The console log is long and CI shows only its end: repeat each failure's name and message here.
    echo
    echo "failed tests:"
    awk '/^  (Passed|Skipped) / || /^  Standard (Output|Error) Messages:/ { on = 0 }
         /^  Failed [A-Za-z]/ { on = 1; n = 0; st = 0 }
         on && /^  Stack Trace:/ { st = 1 }
         on && st { st++; if (st > 10) on = 0 }
         on && n < 40 { print; n++ }' \
      "$results/console.log"
  fi
  echo
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped} skipped"
else
  echo
  echo "0 passed, 1 failed"
  echo "no test results were written" >&2
  status=1
fi
exit "$status"
