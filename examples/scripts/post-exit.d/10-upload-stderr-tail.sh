#!/bin/sh
# Example 3 (docs/operators-guide.md, section 5): the executor's stderr tail, uploaded after it exits.
#
# LIFECYCLE_CHILD_STDERR names a file with the child's last stderr lines (up to 16 KiB, secrets redacted), and
# LIFECYCLE_EXIT_REASON says how it ended. When the executor did not end normally, this stores the tail with a
# header line under UPLOAD_DIR (a mounted directory standing in for an object store: replace the last two commands
# with `aws s3 cp`, `gsutil cp` or `curl -T`). It runs within LIFECYCLE_POST_EXIT_TIMEOUT, and its failure never
# changes lifecycle's exit code.
set -eu
[ "$LIFECYCLE_MODE" = executor ] || exit 0
case "$LIFECYCLE_EXIT_REASON" in
    completed | decommissioned) exit 0 ;;  # nothing to investigate
esac
target="${UPLOAD_DIR:?}/${SPARK_APPLICATION_ID:-unknown-app}/${SPARK_EXECUTOR_POD_NAME:-$(hostname)}.stderr.txt"
mkdir -p "$(dirname "$target")"
{
    echo "# $LIFECYCLE_EXIT_REASON, exit code $LIFECYCLE_CHILD_EXIT_CODE: $LIFECYCLE_EXIT_MESSAGE"
    cat "$LIFECYCLE_CHILD_STDERR"
} > "$target.partial"
mv "$target.partial" "$target"
echo "stderr tail uploaded to $target"
