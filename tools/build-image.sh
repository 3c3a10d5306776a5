#!/usr/bin/env bash
# Builds the controller's image (Containerfile) with podman, as `make image` and the image's e2e test do.
#
# No registry image can be pulled on the development machine and in CI, so the base is made here: a
# Debian root filesystem from mmdebstrap with python3, git and the other tools the image runs,
# imported as localhost/canary-delivery-base:<suite>-<digest of its recipe>. A second run finds that
# base and podman's layer cache and takes seconds; REFRESH_BASE=1 makes the base again (Debian's
# updates since). Set BASE to build on another image instead (python:3.11-slim, say), IMAGE to change
# the tag (canary-delivery:<canary.__version__>).
# The image ships helm and kustomize for the Git sync: the pinned builds of tools/helm and tools/kustomize,
# built when missing (needs Go) and staged into .cache/image-tools by `canary local build --image-tools`.
# Needs root (podman build --isolation chroot), podman and mmdebstrap (tools/install-debian-packages.sh),
# and the virtual environment (make setup; CANARY names another canary command).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' canary/__init__.py)
image=${IMAGE:-canary-delivery:$version}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
security=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
started=$SECONDS

build_args=()
if [[ -n ${BASE:-} ]]; then
  base=$BASE
else
  # What the image runs: python3 (3.11 in bookworm), git with ssh and gpg for the Git sync,
  # CA certificates, and tini as PID 1 to reap what git and ssh leave behind. No docs, no man pages.
  options=(
    --variant=minbase --include=python3,git,openssh-client,gpg,ca-certificates,tini
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
  )
  sources=("deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main")
  digest=$(printf '%s\n' "${options[@]}" "$suite" "${sources[@]}" | sha256sum | cut -c1-12)
  base=localhost/canary-delivery-base:$suite-$digest
  if [[ -n ${REFRESH_BASE:-} ]] || ! podman image exists "$base"; then
    echo "making the base image $base with mmdebstrap" >&2
    # Through a file, so that a failed mmdebstrap cannot leave a truncated base behind.
    scratch=$(mktemp -d /var/tmp/canary-base.XXXXXX)
    trap 'rm -rf "$scratch"' EXIT
    mmdebstrap --quiet "${options[@]}" "$suite" "$scratch/rootfs.tar" "${sources[@]}" </dev/null
    podman import --quiet "$scratch/rootfs.tar" "$base" >/dev/null
    rm -rf "$scratch"
  fi
  # The build stage fetches the Python dependencies from PyPI: let it trust what this machine
  # trusts (a TLS-inspecting proxy's CA, say). Debian's pip reads the system bundle.
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    build_args+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
fi

# helm and kustomize into the build context (seconds when built; a copy only when they changed).
canary=${CANARY:-.venv/bin/canary}
if [[ ! -x $canary ]]; then
  echo "$canary is missing: run make setup (or set CANARY to a canary command)" >&2
  exit 1
fi
tools_started=$SECONDS
"$canary" local build --image-tools >/dev/null
tools_took=$((SECONDS - tools_started))

previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
podman build --isolation chroot --layers --build-arg "BASE=$base" "${build_args[@]}" \
  --tag "$image" --file Containerfile .
current=$(podman image inspect --format '{{.Id}}' "$image")
# The image this one replaces is left without a name: remove it (its layers may still serve the cache).
if [[ -n $previous && $previous != "$current" ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "built $image ($((size / 1000000)) MB) on $base in $((SECONDS - started))s (helm and kustomize: ${tools_took}s)" >&2
