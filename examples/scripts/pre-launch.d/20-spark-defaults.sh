#!/bin/sh
# Example 2 (docs/operators-guide.md, section 5): a spark-defaults.conf fragment written into a writable volume
# before the driver starts.
#
# With a read-only root, $SPARK_HOME/conf cannot be changed at run time. This copies the image's conf directory
# into an emptyDir (SPARK_CONF_VOLUME), appends settings known only in the pod (here its IP and name, from the
# downward API), and exports SPARK_CONF_DIR so that spark-submit reads the merged spark-defaults.conf. Executors get
# their configuration from the driver, so the script does nothing for them.
set -eu
[ "$LIFECYCLE_MODE" = driver ] || exit 0
volume=${SPARK_CONF_VOLUME:-/opt/spark/conf-rw}
if [ -d "${SPARK_HOME:?}/conf" ]; then
    cp -R "$SPARK_HOME/conf/." "$volume/"
fi
cat >> "$volume/spark-defaults.conf" <<CONF

# added at start-up by 20-spark-defaults.sh
spark.driver.host                   ${POD_IP:?POD_IP is not set (downward API: status.podIP)}
spark.kubernetes.driver.pod.name    ${POD_NAME:-$(hostname)}
CONF
echo "SPARK_CONF_DIR=$volume" >> "$LIFECYCLE_ENV_FILE"
echo "wrote $volume/spark-defaults.conf"
