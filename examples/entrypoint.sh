#!/bin/sh
# Compatibility shim for images, pod specs and tools that still start /opt/entrypoint.sh: lifecycle
# replaces upstream's entrypoint.sh and tini. `exec` hands PID 1 to lifecycle with the same arguments
# (driver …, executor, or a command), so no shell stays behind to swallow signals. Prefer
# ENTRYPOINT ["lifecycle"] where you can: until this line runs, PID 1 is a shell that ignores SIGTERM.
exec lifecycle "$@"
