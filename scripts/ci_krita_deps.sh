#!/usr/bin/env bash
# Install Debian's Krita (5.1.5 on bookworm) and PyQt5 for tests/test_krita_plugin.py, which runs the
# plug-in inside Krita (kritarunner, QT_QPA_PLATFORM=offscreen), and Xvfb for scripts/krita_screenshot.py.
# CI runs this as root; safe to run again.
set -euo pipefail

if command -v kritarunner >/dev/null 2>&1 && /usr/bin/python3 -c "import PyQt5" >/dev/null 2>&1; then
    echo "krita already installed: $(command -v kritarunner)"
    exit 0
fi
source "$(dirname "$0")/apt_install.sh"
apt_install "Krita 5 and PyQt5" krita python3-pyqt5 python3-sip xvfb
echo "installed $(dpkg-query -W -f='krita ${Version}' krita 2>/dev/null || echo krita)"
