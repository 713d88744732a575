#!/usr/bin/env bash
# Model-checks the ipcxx.Channel protocol (model/channel.pml, docs/channel.md "Model") with spin:
# the protocol must pass an exhaustive search (no assertion violation, no invalid end state, the
# search complete), and every deliberately broken variant must be caught. Exits non-zero
# otherwise. --full also runs the larger configurations (minutes and several GB; not in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
model=$PWD/model/channel.pml
full=0
[ "${1:-}" = "--full" ] && full=1

for tool in spin gcc; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install spin gcc)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# run NAME PAN_FLAGS SPIN_FLAGS...: generates and compiles pan for the model with the flags,
# runs an exhaustive safety search; leaves pan's output in $work/NAME/out.txt.
run() {
  local name=$1 pan_flags=$2
  shift 2
  mkdir -p "$work/$name"
  (
    cd "$work/$name"
    spin -a "$@" "$model" >spin.txt 2>&1 || { cat spin.txt; exit 1; }
    # shellcheck disable=SC2086 # pan_flags is a list of -D options
    gcc -O2 -w -DSAFETY $pan_flags -o pan pan.c
    ./pan -m200000 -w25 >out.txt 2>&1 || true
  )
}

summary() { # one line: states, memory, time
  local out=$1
  printf '%s states stored, %s transitions, %s MB, %s s\n' \
    "$(awk '/states, stored/ { print $1 }' "$out")" \
    "$(awk '/transitions \(= stored\+matched\)/ { print $1 }' "$out")" \
    "$(awk '/total actual memory usage/ { print $1 }' "$out")" \
    "$(awk '/elapsed time/ { print $4 }' "$out")"
}

# expect_pass NAME DESCRIPTION SPIN_FLAGS...: the search must be complete and find nothing.
expect_pass() {
  local name=$1 description=$2 out
  shift 2
  local start=$SECONDS
  run "$name" "-DCOLLAPSE" "$@"
  out=$work/$name/out.txt
  if grep -q 'errors: 0' "$out" && grep -q '^Full statespace search' "$out" &&
    ! grep -qiE 'max search depth too small|out of memory|error: max|aborted|pan: reached -DMEMLIM' "$out" &&
    grep -q 'states, stored' "$out"; then
    printf 'PASS  %-24s %s: %s' "$name" "$description" "$(summary "$out")"
    printf '      (%d s with spin and gcc)\n' $((SECONDS - start))
  else
    printf 'FAIL  %-24s %s: the search found an error or was incomplete\n' "$name" "$description"
    grep -vE '^Depth=' "$out" | head -40
    if [ -f "$work/$name/channel.pml.trail" ]; then
      echo "---- trail (spin -t -p, last 60 lines)"
      (cd "$work/$name" && spin -t -p "$@" "$model" | tail -60)
    fi
    failures=$((failures + 1))
  fi
}

# expect_violation NAME PATTERN DESCRIPTION SPIN_FLAGS...: spin must report an error whose
# message matches PATTERN (so the variant fails for the reason it is built for).
expect_violation() {
  local name=$1 pattern=$2 description=$3 out found
  shift 3
  run "$name" "" "$@"
  out=$work/$name/out.txt
  found=$(grep -E '^pan:1: ' "$out" | head -1 || true)
  if grep -qE 'errors: [1-9]' "$out" && grep -qE "$pattern" <<<"$found"; then
    printf 'CAUGHT %-23s %s: %s (%s states)\n' "$name" "$description" "${found#pan:1: }" \
      "$(awk '/states, stored/ { print $1 }' "$out")"
  else
    printf 'MISSED %-23s %s: expected an error matching /%s/, got: %s\n' "$name" "$description" \
      "$pattern" "${found:-none}"
    grep -vE '^Depth=' "$out" | head -20
    failures=$((failures + 1))
  fi
}

echo "spin model of the Channel protocol: $(spin -V)"
expect_pass protocol "2 producers (one with send_many) x 2 messages, 2 consumers (receive up to 2), ring of 4 units, 1 producer + 1 consumer death"

expect_pass eos "end of stream: 2 producers x 1 message declaring and finishing, 2 consumers that stop at the end, deaths at every step" -DEOS -DM=1

echo "broken variants (each must be caught):"
expect_violation BUG_NO_REPAIR 'assertion violated.*s!=3' \
  "consumer-lock takeover without the repair" -DBUG_NO_REPAIR
expect_violation BUG_COMMIT_BEFORE_COPY 'assertion violated.*copied' \
  "commit before the copy" -DBUG_COMMIT_BEFORE_COPY
expect_violation BUG_EOS_DRAIN_FIRST 'assertion violated.*snap' \
  "end of stream: the ring read before the producers" -DEOS -DM=1 -DBUG_EOS_DRAIN_FIRST
expect_violation BUG_EOS_MARK_LATE 'assertion violated.*decl' \
  "end of stream: a producer counted before its slot is marked" -DEOS -DM=1 -DBUG_EOS_MARK_LATE
expect_violation BUG_EOS_NO_SEQ 'assertion violated.*decl' \
  "end of stream: the scan ignores declarations made meanwhile" -DEOS -DM=1 -DBUG_EOS_NO_SEQ
expect_violation BUG_EOS_UNCOUNTED 'assertion violated.*pcount' \
  "end of stream: an uncounted mark retired with a decrement" -DEOS -DM=1 -DBUG_EOS_UNCOUNTED
echo "the protocol as first written in docs/channel.md (each problem must be caught):"
expect_violation DOC_NO_ADVANCE 'invalid end state' \
  "only the consumer that marks advances head" -DDOC_NO_ADVANCE
expect_violation DOC_STALE 'assertion violated \(p==' \
  "a stale header read raises corrupted" -DDOC_STALE
expect_violation DOC_RHEAD 'assertion violated.*mstat' \
  "CLAIMED recovery at head without the rhead check" -DDOC_RHEAD
expect_violation DOC_REPAIR 'assertion violated.*s!=3' \
  "repair walk stops at PAD/ABANDONED" -DDOC_REPAIR
expect_violation STRICT_COUNTERS 'assertion violated.*abandoned==nab' \
  "exact counters despite a recoverer's death" -DSTRICT_COUNTERS

if ((full)); then
  echo "larger configurations (--full):"
  expect_pass fine "every store its own step, no state merging" -DFINE
  expect_pass claim1 "receive takes one record at a time" -DMAXCLAIM=1
  expect_pass single "no send_many" -DMANY=0
fi

if ((failures)); then
  echo "error: $failures model check(s) failed"
  exit 1
fi
echo "model checks passed"
