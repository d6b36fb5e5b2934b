#!/bin/sh
# sandgate-python-data <program>: runs as the sandbox user. Seeds the run's matplotlib config dir
# (in its own /tmp) with the font cache built into the image, then becomes the interpreter.
mkdir -p "$MPLCONFIGDIR" && cp /opt/sandgate/matplotlib/fontlist-*.json "$MPLCONFIGDIR"/ 2>/dev/null
exec python3 -u "$@"
