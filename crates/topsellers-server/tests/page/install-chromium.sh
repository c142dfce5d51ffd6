#!/usr/bin/env bash
# Installs what tests/chromium.rs needs: headless Chromium and its WebDriver server (chromedriver), both
# Debian packages. Idempotent: does nothing when both are installed; otherwise runs `apt-get update` once and
# installs them. Needs root (or sudo), as scripts/test.sh and CI have.
#
#   crates/topsellers-server/tests/page/install-chromium.sh
set -euo pipefail

packages=(chromium chromium-driver)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "chromium and chromium-driver are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "cannot install ${missing[*]}: apt-get is not available; install Chromium and chromedriver yourself" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "cannot install ${missing[*]}: run this script as root (or install sudo)" >&2
    exit 1
  fi
fi

echo "installing ${missing[*]} (Debian packages)"
# Another apt run (a second test script) may hold the lock for a while: wait for it instead of failing.
apt_opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get "${apt_opts[@]}" update -qq
# chromium and chromium-driver must be the same version, so both are named even when one is installed.
"${sudo[@]}" apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${packages[@]}"
command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
  echo "chromium or chromedriver is still missing after installing ${packages[*]}" >&2
  exit 1
}
echo "installed: $(chromium --version 2>/dev/null || echo chromium); $(chromedriver --version 2>/dev/null || echo chromedriver)"
