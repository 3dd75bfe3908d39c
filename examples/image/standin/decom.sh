#!/bin/bash
# The stand-in base image's preStop script (this project's own sketch of what /opt/decom.sh does in an
# official image): SIGPWR to the executor JVM, then wait for it to exit. examples/Dockerfile replaces it.
pid=$(pgrep -f -o 'org.apache.spark.(scheduler.cluster.k8s.KubernetesExecutorBackend|executor.CoarseGrainedExecutorBackend)') || exit 0
kill -s PWR "$pid"
tail --pid="$pid" -f /dev/null
