#!/usr/bin/env bash
# make run: an exit and a client on this machine, bonded over two loopback
# links; SOCKS5 on 127.0.0.1:1080. Ctrl-C stops both.
#   BRAID_RUN_DIR   where the secret lives (default: .run/ in the repo)
#   BRAID_EXIT_ARGS extra flags for the exit (e.g. "--allow 127.0.0.0/8")
#   BRAID_LINKS     number of links (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/braid
dir=${BRAID_RUN_DIR:-.run}
mkdir -p "$dir"
if [ ! -s "$dir/secret" ]; then
  (umask 077 && "$bin" keygen > "$dir/secret")
fi
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
# shellcheck disable=SC2086
"$bin" exit --listen 127.0.0.1:7000 --secret-file "$dir/secret" ${BRAID_EXIT_ARGS:-} &
pids+=($!)
"$bin" client --socks 127.0.0.1:1080 --exit 127.0.0.1:7000 --secret-file "$dir/secret" \
  --links "${BRAID_LINKS:-2}" --admin 127.0.0.1:9090 &
pids+=($!)
cat <<MSG

braid is running: SOCKS5 on 127.0.0.1:1080 (admin and dashboard on http://127.0.0.1:9090/).
  curl --socks5-hostname 127.0.0.1:1080 https://example.com/
The exit refuses internal addresses; to reach a service on this machine run
  BRAID_EXIT_ARGS="--allow 127.0.0.0/8" make run
Ctrl-C stops both.

MSG
wait -n
