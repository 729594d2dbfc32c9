#!/usr/bin/env bash
# Commit against commit: the rule every core reshaping must meet. Medians of at
# least 5 interleaved repetitions, the old commit (from a temporary git
# worktree) and the new one in the same run, within 5% on closed-loop msgs/s,
# logins/s and memory per session.
#
#   bash benchmarks/compare_commits.sh OLD [NEW]           # estimated 10-15 minutes on 2 CPUs
#   bash benchmarks/compare_commits.sh --quick OLD [NEW]   # small numbers, about a minute
#   bash benchmarks/compare_commits.sh --full OLD [NEW]    # 10,000 sessions, 15 s windows
#   bash benchmarks/compare_commits.sh --repeat 7 --sessions 5000 OLD
#   bash benchmarks/compare_commits.sh OLD NEW -- --clients 500   # more options for run.py
#
# OLD and NEW are git revisions (HEAD~1, a branch, a hash); NEW defaults to the
# working tree as it is (uncommitted changes included). Each revision is
# checked out with `git worktree add --detach` into a temp directory, removed
# afterwards, and served by `PYTHONPATH=<tree> python -m xmpp_trio serve`
# (target ours@REV of benchmarks/load/targets.py); the load generator is this
# checkout's. The two servers take turns for every scenario run (A B A B ...,
# `--order scenario`), `--repeat` times (5 by default), on:
#
#   throughput       1,000 clients, direct TLS, full JIDs, 5 in flight, 10 s windows
#   throughput-bare  1,000 clients, STARTTLS, bare JIDs, 4 in flight, 120-byte bodies
#   login            1,000 SCRAM-SHA-256 logins over direct TLS, 50 at a time
#   memory           2,000 idle sessions, TLS and plaintext (--sessions, --full: 10,000)
#
# and prints, per figure, the median [min-max] of each commit, the ratio
# new/old and PASS/FAIL where the rule applies (msgs/s and logins/s may not
# fall by more than 5%, KB/session may not rise by more than 5%; latencies are
# shown for information). Exit status: 0 when every rule figure passes, 1
# otherwise (a figure not measured on both sides fails), 2 on a usage error.
# Run it on a quiet machine: other load on the two cores moves these figures
# by more than 5% (the run flags windows where it saw some with SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

repeat=""
sessions=2000
duration=10
mode=default
revs=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) mode=quick ;;
        --full) mode=full ;;
        --repeat) repeat="$2"; shift ;;
        --sessions) sessions="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        -h|--help) usage ;;
        --) shift; extra=("$@"); break ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) revs+=("$1") ;;
    esac
    shift
done
if [ "${#revs[@]}" -lt 1 ] || [ "${#revs[@]}" -gt 2 ]; then usage; fi

old="ours@${revs[0]}"
new="ours"
if [ "${#revs[@]}" -eq 2 ]; then new="ours@${revs[1]}"; fi
for rev in "${revs[@]}"; do
    git rev-parse --verify --quiet "$rev^{commit}" >/dev/null || { echo "not a commit: $rev" >&2; exit 2; }
done

args=(--targets "$old,$new" --order scenario --commit-rule
      --scenarios throughput,throughput-bare,login,memory --mechanism SCRAM-SHA-256)
case "$mode" in
    quick)
        # smoke test of the comparison: 3 repetitions of small numbers (not the rule's 5)
        args+=(--quick --repeat "${repeat:-3}" --memory-repeat "${repeat:-3}" --memory-tls direct) ;;
    full)
        args+=(--repeat "${repeat:-5}" --memory-repeat "${repeat:-5}" --sessions 10000
               --duration 15) ;;
    *)
        args+=(--repeat "${repeat:-5}" --memory-repeat "${repeat:-5}" --sessions "$sessions"
               --duration "$duration" --warmup 3) ;;
esac

newdesc="working tree"
if [ "${#revs[@]}" -eq 2 ]; then newdesc="$(git rev-parse --short "${revs[1]}")"; fi
echo "== $old against $new ($(git rev-parse --short "${revs[0]}") vs $newdesc), mode $mode"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
python3 benchmarks/load/run.py "${args[@]}" "${extra[@]}" | tee "$log"
grep -q "^commit rule: PASS" "$log"
