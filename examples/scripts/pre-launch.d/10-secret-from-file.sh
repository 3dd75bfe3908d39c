#!/bin/sh
# Example 1 (docs/operators-guide.md, section 5): a credential from a mounted Secret into an environment variable.
#
# The Secret is mounted as a file (it can rotate, and it is not spelled out in the pod's env). This exports its
# content as AWS_SECRET_ACCESS_KEY, which the S3A connector reads. The NAME<<DELIMITER form keeps the value whole
# (newlines included); lifecycle never logs the name or the value (the name looks secret), and redacts the value
# wherever it would show up later: this script's own output, the JVM's stderr tail, the termination message.
# (S3A_KEY_FILE, not …_SECRET_FILE: a variable whose name looks secret has its value, here a path, redacted.)
# A missing file fails the script, and with LIFECYCLE_PRE_LAUNCH_FAILURE=stop (the default) nothing is launched.
set -eu
file=${S3A_KEY_FILE:-/var/run/secrets/s3a/secret-access-key}
if [ ! -r "$file" ]; then
    echo "cannot read $file (is the Secret mounted?)" >&2
    exit 1
fi
{
    echo "AWS_SECRET_ACCESS_KEY<<END_OF_KEY"
    cat "$file"
    [ -z "$(tail -c 1 "$file")" ] || echo  # end the value's last line
    echo "END_OF_KEY"
} >> "$LIFECYCLE_ENV_FILE"
echo "S3A secret key read from $file"
