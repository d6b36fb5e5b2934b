#!/bin/bash
# sandgate-entry: PID 1 of every sandbox container, the run's supervisor. It runs as root with
# only CAP_SETUID, CAP_SETGID and CAP_KILL (everything else dropped, no-new-privileges); the
# program runs as uid 10001 with no capabilities. A process of another uid without
# CAP_SYS_PTRACE cannot ptrace this one, read its memory (/proc/1/mem, process_vm_readv) or its
# file descriptors, under runc and under gVisor alike, so the run's nonce, held only in this
# shell's memory and never in an argv, is out of the program's reach.
#
# The container starts before any code exists (warm pool) and waits here on stdin, which
# carries, in order:
#
#   SANDGATE/2 <nonce> <code-bytes> <file-count> <out-limit-bytes>\n
#   then per file:  <bytes> <path, base64>\n<bytes of content>      (read by sandgate-stage)
#   then:           <code bytes>
#   then:           the program's own stdin, until EOF
#
# When the program ends, every other process of the container is killed (nothing outlives the
# run), then this supervisor, and only it, writes the trailer to stdout:
#
#   \n<nonce> exit <code>\n  [<nonce> out <base64 of a tar of /work/out, cut at out-limit>\n]
#   <nonce> end\n
#
# The exit code is what wait(2) returned for the program, so it is the program's true exit
# status; the files are read from /work/out after nothing of the program is left. The engine
# decides the OOM verdict and usage from the container's cgroup, not from anything here.
set -u
umask 077
as_sandbox() { setpriv --reuid=10001 --regid=10001 --clear-groups --inh-caps=-all -- "$@"; }
# Before the wait, so not on the run's path. /work is 0711 and out/ 0755, so that this shell
# (root without CAP_DAC_*) can see whether out/ holds anything; only the sandbox user reads it.
as_sandbox mkdir -p /tmp/sandgate && as_sandbox mkdir -p -m 0755 /work/out

read -r magic nonce code_bytes file_count out_limit || exit 120
[ "$magic" = "SANDGATE/2" ] || exit 121
if ((file_count == 0)); then
  # The common case, without a process of the sandbox user: the code goes to /run/sandgate, a
  # tmpfs of this supervisor's, readable (not writable) by the program.
  program="/run/sandgate/main.${SANDGATE_EXT}"
  (umask 022 && dd iflag=count_bytes,fullblock bs=65536 count="$code_bytes" status=none of="$program") || exit 122
else
  program="/tmp/sandgate/main.${SANDGATE_EXT}"
  as_sandbox /usr/local/bin/sandgate-stage "$code_bytes" "$file_count" || exit 122
fi

# shellcheck disable=SC2086 # SANDGATE_RUN is a command with its flags
as_sandbox $SANDGATE_RUN "$program"
status=$?

# Every process but this one: the program's background leftovers. kill(-1) fails with ESRCH once
# nothing is left to signal; bounded, in case a zombie keeps answering.
for _ in {1..50}; do kill -KILL -1 2>/dev/null || break; wait 2>/dev/null; done
exec 0</dev/null
printf '\n%s exit %d\n' "$nonce" "$status"
shopt -s nullglob dotglob
out=(/work/out/*) # a glob, not ls: ls fails under some gVisor versions
if ((${#out[@]})); then
  printf '%s out ' "$nonce"
  as_sandbox /usr/local/bin/sandgate-collect "$out_limit"
  printf '\n'
fi
printf '%s end\n' "$nonce"
printf '\n%s end\n' "$nonce" >&2 # stderr is a pipe of its own: the engine reads it to here too
exec sleep infinity # the engine reads the cgroup while the container exists, then removes it
