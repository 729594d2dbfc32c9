#!/usr/bin/env bash
# Issues 6 and 24: the load benchmark against our server, Prosody 0.12 (its
# full module set, archives included, and its minimal set) and ejabberd 23.01
# (without archives; ejabberd-sql with mod_mam archiving every message in SQLite,
# its recommended store; ejabberd-full archiving in Mnesia, its default one),
# each server pinned to CPU 0 and the compiled generator (benchmarks/load/gen,
# Go) to CPU 1; three repetitions of issue 24's matrix (run.py --matrix on),
# then one table of medians [min-max] with the ratios and the targets.
#
#   bash benchmarks/compare.sh            # the full matrix (hours: see benchmarks/README.md)
#   bash benchmarks/compare.sh --quick    # a subset with small numbers, one pass, 2-3 minutes
#   bash benchmarks/compare.sh --json     # further options go to benchmarks/load/run.py
#   REPEAT=1 bash benchmarks/compare.sh   # one repetition
#   MATRIX=off bash benchmarks/compare.sh # issue 6's scenarios instead of the matrix
#
# Installs what is missing with apt-get (needs root or sudo): prosody,
# ejabberd, erlang-p1-sqlite3 (ejabberd's SQLite driver, for ejabberd-sql) and
# golang-go. Their system services are never started (policy-rc.d refuses the
# start during installation); each server runs in the foreground
# from a generated config in a temp directory (own ports, data, node, log).
# Without Go the Python generator measures instead, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
command -v prosody >/dev/null 2>&1 || missing="$missing prosody"
{ command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ]; } || missing="$missing ejabberd"
command -v go >/dev/null 2>&1 || missing="$missing golang-go"
sqlite_driver() { compgen -G "/usr/lib/erlang/lib/p1_sqlite3-*" >/dev/null; }
sqlite_driver || missing="$missing erlang-p1-sqlite3"
if [ -n "$missing" ]; then
    echo "== installing$missing (apt-get)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
    fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null \
        || echo "WARNING: apt-get install$missing failed; running with what is there"
    if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi
echo "== prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?')," \
     "ejabberd $(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || echo 'missing')," \
     "$(go version 2>/dev/null || echo 'no Go: the Python generator measures')"

# ejabberd first: openloop-sat offers the others 80% of its saturation rate
# (issue 24's p99 target), which it must have measured before.
targets=ours,prosody,prosody-min
if command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ]; then
    # ejabberd-sql and ejabberd-full archive every message (mod_mam, default: always)
    # as ours does, in SQLite / Mnesia; the minimal ejabberd (no archives) stays:
    # issue 24's floors are against it
    if sqlite_driver; then
        targets=ejabberd,ejabberd-sql,ejabberd-full,$targets
    else
        echo "WARNING: no erlang-p1-sqlite3 (ejabberd's SQLite driver): ejabberd-sql left out"
        targets=ejabberd,ejabberd-full,$targets
    fi
fi

repeat=3
for arg in "$@"; do [ "$arg" = "--quick" ] && repeat=1; done  # --quick: one pass, 2-3 minutes
python3 benchmarks/load/run.py --targets "$targets" --repeat "${REPEAT:-$repeat}" \
    --matrix "${MATRIX:-on}" "$@"
