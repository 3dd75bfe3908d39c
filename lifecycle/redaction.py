"""Which values are secrets, and how they are shown: never."""

from __future__ import annotations

import re

REDACTED = "<redacted>"

# _SPARK_AUTH_SECRET, HADOOP_TOKEN_FILE_LOCATION-style names, AWS_SECRET_ACCESS_KEY, DB_PASSWORD, …
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY", re.IGNORECASE)
# -Dspark.ssl.keyStorePassword=…, --conf spark.authenticate.secret=…
_SECRET_ASSIGNMENT = re.compile(r"((?:secret|password|passwd|token|credential)[A-Za-z0-9_.\-]*=)(.+)", re.IGNORECASE)


NOT_SECRET = frozenset({"NSS_WRAPPER_PASSWD"})  # a path to a passwd file (identity.py), not a password


def is_secret_name(name: str) -> bool:
    """True for variable or property names that look like they hold a secret."""
    return name not in NOT_SECRET and bool(_SECRET_NAME.search(name))


def redact_value(name: str, value: str) -> str:
    """The value, or <redacted> if the name looks secret."""
    return REDACTED if is_secret_name(name) else value


def redact_arg(arg: str) -> str:
    """An argv element with the value of any `secret-like-key=value` replaced."""
    return _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, arg)
