#!/usr/bin/env bash
# What the kernel gives one stream over loopback on this machine, with no
# registry in the way: a 1 GiB file served by serve-file.c with sendfile(2)
# (Berth's path to a client on another host) and with 32 KiB pread+write
# copies (what the reference's Go server does here, and Berth's path to a
# client on this host: docs/performance.md), each pulled 6 times by curl. Prints
# MB/s per pull and the server's CPU-seconds per GiB.
#   bash bench/loopback/run.sh [SIZE_MiB]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
size_mib="${1:-1024}"
cc -O2 -std=gnu11 -pthread -o "$work/serve-file" "$here/serve-file.c"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/blob"
cat "$work/blob" > /dev/null # in the page cache, as a just-pushed blob is
port=$((20000 + RANDOM % 20000))
for mode in "sendfile 4194304" "copy 32768"; do
  set -- $mode
  "$work/serve-file" "$port" "$1" "$work/blob" "$2" &
  server=$!
  sleep 0.3
  speeds=""
  for _ in 1 2 3 4 5 6; do
    speeds+="$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/blob" | awk '{printf "%d", $1 / 1e6}') "
  done
  hz=$(getconf CLK_TCK)
  ticks=$(awk '{print $14 + $15}' "/proc/$server/stat")
  echo "$1 (chunk $2), one stream: MB/s ${speeds}; server CPU $(awk -v t="$ticks" -v hz="$hz" -v m="$size_mib" 'BEGIN {printf "%.3f", t / hz / 6 / (m / 1024)}') CPU-s/GiB"
  # 8 at once, twice: total MB/s over the wall time, CPU of these 16 pulls only.
  start=$(date +%s%N)
  for _ in 1 2; do
    for _ in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null "http://127.0.0.1:$port/blob" & done
    wait $(jobs -p | grep -v "^$server\$")
  done
  ns=$(( $(date +%s%N) - start ))
  ticks8=$(( $(awk '{print $14 + $15}' "/proc/$server/stat") - ticks ))
  echo "$1 (chunk $2), 8 streams: $(awk -v ns="$ns" -v m="$size_mib" 'BEGIN {printf "%d", 16 * m * 1048576 / (ns / 1e9) / 1e6}') MB/s in all; server CPU $(awk -v t="$ticks8" -v hz="$hz" -v m="$size_mib" 'BEGIN {printf "%.3f", t / hz / 16 / (m / 1024)}') CPU-s/GiB"
  kill "$server"
  wait "$server" 2>/dev/null || true
  port=$((port + 1))
done
