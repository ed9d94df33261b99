#!/bin/sh
# Installs the Debian packages the scenario suite needs (make test-detection),
# without starting their services: the suite starts its own instances, each
# bound to 127.0.0.1 with its own configuration. Idempotent; quiet when there
# is nothing to do.
set -eu
missing=""
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "test-detection: installing$missing (services not started)"
# invoke-rc.d asks policy-rc.d whether a maintainer script may start a service: 101 = no
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
fi
trap 'if [ -n "$guard" ]; then rm -f "$guard"; fi' EXIT
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 $missing >/dev/null; then
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 $missing >/dev/null
fi
