#!/usr/bin/env bash
# Install everything VirtDash needs on Debian 12 (as root): packages, virtualenv, front-end
# assets, database. Idempotent and quick when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
      libvirt-dev pkg-config gcc python3-venv redis-server nodejs npm cpio busybox-static openssh-client
      nginx-light openssl libosinfo-bin dnsmasq-base)
[ "${VIRTDASH_WITH_TEST_DEBS:-0}" = 1 ] && DEBS+=(chromium imagemagick fonts-dejavu-core iproute2 openssh-server poppler-utils)

missing=()
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# node/npm may come from elsewhere (e.g. NodeSource): only ask apt when the commands are absent.
command -v node >/dev/null && missing=("${missing[@]/nodejs}")
command -v npm >/dev/null && missing=("${missing[@]/npm}")
read -ra missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
if ! cmp -s requirements.txt .venv/.requirements.installed; then
  echo "==> pip install -r requirements.txt"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  cp requirements.txt .venv/.requirements.installed
fi

if ! cmp -s package.json node_modules/.package.json.installed 2>/dev/null; then
  echo "==> npm install (front-end libraries)"
  npm install --no-audit --no-fund --silent
  cp package.json node_modules/.package.json.installed
fi
mkdir -p static/vendor
rsync_copy() { rm -rf "static/vendor/$2"; mkdir -p "static/vendor/$2"; cp -r "$1"/. "static/vendor/$2/"; }
rsync_copy node_modules/@novnc/novnc/core novnc/core
rsync_copy node_modules/@novnc/novnc/vendor novnc/vendor
rsync_copy node_modules/@xterm/xterm/lib xterm/lib
rsync_copy node_modules/@xterm/xterm/css xterm/css
rsync_copy node_modules/@xterm/addon-fit/lib xterm-addon-fit/lib
rsync_copy node_modules/chart.js/dist chartjs

echo "==> database"
.venv/bin/python manage.py migrate --no-input -v0
echo "==> installed"
