#!/usr/bin/env bash
# Install Debian's Chromium for tests/test_editor_browser.py (Playwright drives it through
# executable_path, so Playwright downloads no browser). CI runs this as root; safe to run again.
# Also needed: pip install playwright
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
source "$(dirname "$0")/apt_install.sh"
apt_install "Chromium" chromium fonts-dejavu-core
echo "installed $(chromium --version 2>/dev/null || echo chromium)"
