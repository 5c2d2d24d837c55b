#!/usr/bin/env bash
# Install Debian packages that are missing (as root), or name them in one clear message.
set -euo pipefail
missing=()
for pkg in "$@"; do
  case "$pkg" in
    python3-venv) python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=("$pkg") ;;
    docker.io) command -v dockerd >/dev/null 2>&1 || missing+=("$pkg") ;;
    busybox-static) [ -x /bin/busybox ] || missing+=("$pkg") ;;
    *) command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]} — install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
