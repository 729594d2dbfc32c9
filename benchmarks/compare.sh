#!/usr/bin/env bash
# Issue 6 (and 24): the load scenarios against our server and Prosody 0.12 (and
# ejabberd when `ejabberdctl` is installed), three repetitions, then one table
# of medians with the ratios ours/Prosody (and ours/ejabberd) and the issue's
# targets (against Prosody).
#
#   bash benchmarks/compare.sh            # full run (estimated 30 minutes on 2 CPUs)
#   bash benchmarks/compare.sh --quick    # small numbers, 2-3 minutes
#   bash benchmarks/compare.sh --json     # further options go to benchmarks/load/run.py
#   REPEAT=1 bash benchmarks/compare.sh   # one repetition
#
# Installs Prosody with apt-get when it is missing (needs root or sudo).
# Prosody then runs in the foreground from a generated config in a temp
# directory (its own ports, data, pidfile and log); the system service is not
# used (its start during installation is suppressed with policy-rc.d).
# ejabberd is never installed from here (apt-get install ejabberd, with the
# same policy-rc.d trick, to include it); when present it runs from a generated
# config with its own node name, spool and ports, never the system service.
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

targets=ours,prosody
if command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ]; then
    targets=ours,prosody,ejabberd
    echo "== ejabberd $(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || echo '?')"
fi

python3 benchmarks/load/run.py --targets "$targets" --repeat "${REPEAT:-3}" "$@"
