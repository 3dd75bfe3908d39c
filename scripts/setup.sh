#!/usr/bin/env bash
# Set up a fresh machine for lifecycle: Debian packages the tests use, and a venv with the package.
# Idempotent: installs only what is missing. The venv gets the test and dev extras once per pyproject.toml, and
# lifecycle itself as users get it: the wheel `python -m build` makes from this checkout (not an editable
# install, whose import finder costs ~15 ms a start and hides packaging mistakes), rebuilt when a source changes.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tini dumb-init graphviz libnss-wrapper python3-venv util-linux procps runc debootstrap podman buildah catatonit)
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
  echo "setup: creating .venv with $($python -V) and installing lifecycle's test and dev extras"
  rm -rf .venv
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q '.[test,dev]'
  rm -f .venv/.wheel-stamp
  echo "$stamp" > .venv/.stamp
fi
sources=$(find pyproject.toml README.md LICENSE lifecycle -name __pycache__ -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
if [ "$(cat .venv/.wheel-stamp 2>/dev/null)" != "$sources" ]; then
  echo "setup: building the spark-lifecycle wheel and installing it into .venv"
  rm -rf .dist
  built=$(.venv/bin/python -m build --wheel --outdir .dist . 2>&1) || { echo "$built"; exit 1; }
  rm -rf build ./*.egg-info
  .venv/bin/python -m pip install -q --no-deps --force-reinstall .dist/spark_lifecycle-*.whl
  echo "$sources" > .venv/.wheel-stamp
fi
