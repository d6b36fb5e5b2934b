#!/bin/bash
# sandgate-entry: PID 1 of every sandbox container. The container is started before any code
# exists (warm pool) and waits here on stdin, which carries, in order:
#
#   SANDGATE/1 <nonce> <code-bytes> <file-count>\n
#   then per file:  <bytes> <path, base64>\n<bytes of content>
#   then:           <code bytes>
#   then:           the program's own stdin, until EOF
#
# Paths were checked by the host (relative, no ..); they land under /work. The program runs in
# /work with the rest of stdin as its stdin. When it ends, every other process of the sandbox
# user is killed (nothing outlives the run), then a trailer goes to stdout:
#
#   \n<nonce> exit <code>\n  [<nonce> out <base64 tar of /work/out>\n]  <nonce> end\n
#
# The nonce is fresh per run and known only to the host and this script, so the program cannot
# end its own output with a forged trailer. Afterwards this script sleeps: the host reads the
# container's cgroup usage while it still exists, then removes it.
set -u
umask 077
read_exact() { dd iflag=count_bytes,fullblock bs=65536 count="$1" status=none; }
mkdir -p /tmp/sandgate /work/out # before the wait: not on the run's path

read -r magic nonce code_bytes file_count || exit 120
[ "$magic" = "SANDGATE/1" ] || exit 121
cd /work || exit 122
for ((i = 0; i < file_count; i++)); do
  read -r size path_b64 || exit 123
  path=$(printf '%s' "$path_b64" | base64 -d) || exit 124
  mkdir -p -- "$(dirname -- "$path")" && read_exact "$size" > "$path" || exit 125
done
program=/tmp/sandgate/main.${SANDGATE_EXT}
read_exact "$code_bytes" > "$program" || exit 126

# shellcheck disable=SC2086 # SANDGATE_RUN is a command with its flags
$SANDGATE_RUN "$program"
status=$?

kill -KILL -1 2>/dev/null # every process of this user but PID 1: background leftovers
exec 0</dev/null
printf '\n%s exit %d\n' "$nonce" "$status"
shopt -s nullglob dotglob
out=(/work/out/*) # a glob, not ls: ls fails under some gVisor versions
if ((${#out[@]})); then
  printf '%s out ' "$nonce"
  tar -C /work/out -b 1 -cf - . 2>/dev/null | base64 -w 0
  printf '\n'
fi
printf '%s end\n' "$nonce"
exec sleep infinity
