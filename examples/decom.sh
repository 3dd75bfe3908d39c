#!/bin/sh
# Compatibility shim for spark.kubernetes.decommission.script=/opt/decom.sh (Spark's default preStop
# command, run by the kubelet with no arguments and no shell): lifecycle-decommission asks lifecycle
# (PID 1) to decommission the executor JVM and waits until it has exited. See docs/operators-guide.md.
exec lifecycle-decommission
