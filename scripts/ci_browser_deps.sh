#!/usr/bin/env bash
# Install Debian's Chromium for tests/test_editor_browser.py (Playwright drives it through
# executable_path, so Playwright downloads no browser). CI runs this as root; safe to run again.
# Also needed: pip install playwright
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found; install Chromium by hand (Debian package: chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed $(chromium --version 2>/dev/null || echo chromium)"
