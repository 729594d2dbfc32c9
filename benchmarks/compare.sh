#!/usr/bin/env bash
# Issue 6: the load scenarios against our server and Prosody 0.12, three
# repetitions, then one table of medians with the ratio ours/Prosody and the
# issue's targets (ejabberd is not wired in).
#
#   bash benchmarks/compare.sh            # full run (about 20 minutes on 2 CPUs)
#   bash benchmarks/compare.sh --quick    # small numbers, about 2 minutes
#   bash benchmarks/compare.sh --json     # further options go to benchmarks/load/run.py
#   REPEAT=1 bash benchmarks/compare.sh   # one repetition
#
# Installs Prosody with apt-get when it is missing (needs root or sudo).
# Prosody then runs in the foreground from a generated config in a temp
# directory (its own ports, data, pidfile and log); the system service is not
# used (its start during installation is suppressed with policy-rc.d).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prosody >/dev/null 2>&1; then
    echo "== installing prosody (apt-get)"
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
    $SUDO apt-get install -y -q prosody >/dev/null
    if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi
echo "== prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?') ($(command -v prosody))"

python3 benchmarks/load/run.py --targets ours,prosody --repeat "${REPEAT:-3}" "$@"
