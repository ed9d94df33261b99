#!/usr/bin/env bash
# `make image`: the agent's container image, built reproducibly from Debian
# packages. mmdebstrap makes a minimal Debian 12 rootfs (python3, libbpf1 and
# the libraries the agent loads; no compiler), the agent is installed into a
# venv in it from wheels built here (non-editable), with the prebuilt CO-RE
# objects, the default policy and its compiled objects in /usr/lib/rsagent;
# `podman import` turns the tarball into the image rsagent:VERSION.
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (the last commit's
# time), files are written in a fixed order, bytecode is not compiled at
# install time; two builds of one commit against the same Debian archive
# state give the same rootfs.tar (its sha256 is printed and kept beside it).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build/image}
VPY=${VPY:-.venv/bin/python}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
VERSION=$("$VPY" -c 'import importlib.metadata as m; print(m.version("rsagent"))')
IMAGE=${IMAGE:-localhost/rsagent:$VERSION}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export PYTHONDONTWRITEBYTECODE=1

rm -rf "$OUT/wheels" "$OUT/data"
mkdir -p "$OUT/wheels"
echo "image: wheels (rsagent and its pinned dependencies)"
"$VPY" -m pip wheel -q --disable-pip-version-check -w "$OUT/wheels" . 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
echo "image: data (objects, default policy, its compiled objects)"
"$VPY" -m agent.build --quiet --install-data "$OUT/data"

# Runtime packages only: the agent loads objects, it never compiles.
PKGS=python3,python3-venv,libbpf1,libelf1,zlib1g,ca-certificates
echo "image: rootfs ($SUITE: $PKGS)"
mmdebstrap --quiet --variant=apt --format=tar --include="$PKGS" \
    --essential-hook='echo "path-exclude=/usr/share/doc/*" > "$1/etc/dpkg/dpkg.cfg.d/nodoc"' \
    --customize-hook="copy-in $OUT/wheels /tmp" \
    --customize-hook="mkdir -p \"\$1/usr/lib/rsagent\"" \
    --customize-hook="sync-in $OUT/data /usr/lib/rsagent" \
    --customize-hook='chroot "$1" python3 -m venv /opt/rsagent' \
    --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin /opt/rsagent/bin/python -m pip install -q --no-index --no-compile --disable-pip-version-check --find-links /tmp/wheels rsagent' \
    --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin /opt/rsagent/bin/python -m pip uninstall -q -y pip setuptools' \
    --customize-hook='rm -rf "$1/tmp/wheels" "$1/tmp/pip"' \
    --customize-hook='ln -sf /opt/rsagent/bin/rsagent "$1/usr/local/bin/rsagent"; ln -sf /opt/rsagent/bin/rulec "$1/usr/local/bin/rulec"' \
    --customize-hook='find "$1/opt/rsagent" -name __pycache__ -prune -exec rm -rf {} +' \
    --customize-hook='rm -rf "$1/var/cache/apt"/* "$1/var/lib/apt/lists"/* "$1/var/log"/* "$1/etc/machine-id"; : > "$1/etc/machine-id"' \
    "$SUITE" "$OUT/rootfs.tar" "$MIRROR"
sha256sum "$OUT/rootfs.tar" | tee "$OUT/rootfs.tar.sha256"
echo "image: podman import -> $IMAGE"
podman --runtime runc --cgroup-manager=cgroupfs --events-backend=file import -q \
    --change 'ENV RSAGENT_DATA_DIR=/usr/lib/rsagent' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENTRYPOINT ["/opt/rsagent/bin/rsagent"]' \
    --change 'CMD ["run"]' \
    --change "LABEL org.opencontainers.image.version=$VERSION" \
    "$OUT/rootfs.tar" "$IMAGE" >/dev/null
echo "image: $IMAGE ($(du -h "$OUT/rootfs.tar" | cut -f1) rootfs)"
