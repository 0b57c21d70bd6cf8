#!/bin/sh
# The stream on the compose cluster: spark-submit in client mode, so the driver runs in this container. A container
# stop (SIGTERM) goes to the Python driver, spark-submit's child, which finishes and publishes the running batch;
# SIGTERM to spark-submit itself would stop its JVM under the batch (safe, not clean: docs/operations.md).
set -u
"$SPARK_HOME/bin/spark-submit" --master "${SPARK_MASTER_URL:-spark://spark-master:7077}" \
    --driver-memory "${STREAM_DRIVER_MEMORY:-1g}" \
    --conf "spark.driver.host=${SPARK_DRIVER_HOST:-$(hostname)}" --conf spark.driver.bindAddress=0.0.0.0 \
    /app/spark_jobs/stream.py "$@" &
submit=$!
trap 'kill -TERM $(pgrep -P "$submit" -f stream.py) 2>/dev/null || kill -TERM "$submit"' TERM INT
wait "$submit"
status=$?
# A trapped signal interrupts `wait`: keep waiting while the driver finishes its batch.
while [ "$status" -gt 128 ] && kill -0 "$submit" 2>/dev/null; do
    wait "$submit"
    status=$?
done
exit "$status"
