#!/bin/bash
# The stand-in base image's entrypoint (this project's own sketch, not upstream's script): what an official
# apache/spark image does at /opt/entrypoint.sh, in outline. Images built from examples/Dockerfile replace it
# with the one-line shim that execs lifecycle. Modes: driver/executor run Spark's JVM under tini; anything
# else is run as given.
set -e
case "${1:-}" in
  driver)
    shift
    exec /usr/bin/tini -s -- "$SPARK_HOME/bin/spark-submit" --deploy-mode client "$@"
    ;;
  executor)
    shift
    exec /usr/bin/tini -s -- "${JAVA_HOME:-/opt/java/openjdk}/bin/java" \
      -Xms"${SPARK_EXECUTOR_MEMORY:-1g}" -Xmx"${SPARK_EXECUTOR_MEMORY:-1g}" \
      -cp "${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$SPARK_HOME/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" --podName "${SPARK_EXECUTOR_POD_NAME:-}"
    ;;
  *)
    exec "$@"
    ;;
esac
