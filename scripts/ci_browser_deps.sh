#!/usr/bin/env bash
# Install Debian's Chromium for tests/test_editor_browser.py (Playwright drives it through
# executable_path, so no browser download). CI runs this as root; safe to run again.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed $(chromium --version 2>/dev/null || echo chromium)"
