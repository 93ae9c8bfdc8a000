# Sourced by the scripts/ci_*_deps.sh installers: apt_install NAME PACKAGE... installs Debian packages
# quietly, or stops with a one-line error naming them where there is no apt-get.
apt_install() {
    local name="$1"
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; install $name by hand (Debian packages: $*)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
