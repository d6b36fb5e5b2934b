#!/bin/bash
# sandgate-stage <code-bytes> <file-count>: runs as the sandbox user before the program and
# writes its input files under /work and its code to /tmp/sandgate, reading them from stdin
# (the format is in sandgate-entry). Paths were checked by the host (relative, no ..).
set -u
umask 077
read_exact() { dd iflag=count_bytes,fullblock bs=65536 count="$1" status=none; }
cd /work || exit 1
for ((i = 0; i < $2; i++)); do
  read -r size path_b64 || exit 2
  path=$(printf '%s' "$path_b64" | base64 -d) || exit 3
  mkdir -p -- "$(dirname -- "$path")" && read_exact "$size" >"$path" || exit 4
done
read_exact "$1" >"/tmp/sandgate/main.${SANDGATE_EXT}" || exit 5
