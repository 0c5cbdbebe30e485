#!/usr/bin/env bash
# Install Debian's chromium for the browser tests when it is missing (downloaded browser
# builds do not work here). Needs root; exits non-zero with a reason otherwise.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then echo "chromium is missing and installing it needs root (apt-get install chromium)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
