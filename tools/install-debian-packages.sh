#!/usr/bin/env bash
# Installs the Debian packages the local stack needs (prometheus, git), the metric back ends
# the provider tests run for real (InfluxDB 1.x, Graphite's carbon and web app) and what
# `make image` builds the controller's image with (podman, mmdebstrap) and the browser the dashboard
# tests drive (chromium) when they are missing,
# and checks the toolchains that Debian cannot provide at the versions we need (Go, Python).
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v carbon-cache >/dev/null 2>&1 || missing+=(graphite-carbon)
command -v graphite-manage >/dev/null 2>&1 || missing+=(graphite-web)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v go >/dev/null 2>&1; then
  echo "Go 1.24 or newer is needed to build the control plane (https://go.dev/doc/install)" >&2
  exit 1
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
