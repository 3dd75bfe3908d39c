#!/usr/bin/env bash
# Set up a fresh machine for lifecycle: Debian packages the tests use, and a venv with the package.
# Idempotent: installs only what is missing; re-installs the package when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tini dumb-init graphviz libnss-wrapper python3-venv util-linux procps runc debootstrap)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.stamp 2>/dev/null)" != "$stamp" ]; then
  echo "setup: creating .venv with $($python -V) and installing lifecycle with its test and dev extras"
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,dev]'
  echo "$stamp" > .venv/.stamp
fi
