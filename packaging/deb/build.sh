#!/bin/sh
# Build logwatch-alerts_VERSION_ARCH.deb from this checkout with dpkg-deb.
#
#   packaging/deb/build.sh [OUTDIR]        (default OUTDIR: dist/)
#
# The package carries the project's wheel and every dependency's wheel (for each
# Python in PYTHONS, built for this machine's architecture); its postinst makes
# the venv /opt/logwatch from them offline (a venv is not relocatable, so it is
# made where it runs). Needs python3 with pip, network access to PyPI (or a pip
# index configured), and dpkg-deb.
#   PYTHONS   Python versions to carry wheels for (default "3.11 3.12 3.13":
#             Debian 12 and 13, Ubuntu 24.04)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/dist}" && cd "${1:-$REPO/dist}" && pwd)
PYTHONS=${PYTHONS:-3.11 3.12 3.13}
NAME=logwatch-alerts
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/logwatch/__init__.py")
ARCH=$(dpkg --print-architecture)
case "$ARCH" in
    amd64) MACHINE=x86_64 ;;
    arm64) MACHINE=aarch64 ;;
    *) echo "build.sh: no manylinux wheels known for $ARCH" >&2; exit 1 ;;
esac
[ -n "$VERSION" ] || { echo "build.sh: no __version__ in logwatch/__init__.py" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
WHEELS=$ROOT/usr/share/$NAME/wheels
PIP="python3 -m pip --disable-pip-version-check --quiet"

# --- wheels: ours, then every dependency's for each Python, binary only ---------
mkdir -p "$WHEELS"
$PIP wheel --no-deps --wheel-dir "$WHEELS" "$REPO"
OURS=$(ls "$WHEELS"/*.whl)
for py in $PYTHONS; do
    platforms="--platform manylinux2014_$MACHINE --platform manylinux_2_17_$MACHINE"
    platforms="$platforms --platform manylinux_2_28_$MACHINE"
    # shellcheck disable=SC2086 # word splitting of the option lists is the point
    $PIP download --only-binary=:all: --python-version "$py" $platforms \
        --dest "$WHEELS" "$OURS[metrics]"
    # the fast matcher where its wheels exist (postinst falls back without it)
    # shellcheck disable=SC2086
    $PIP download --only-binary=:all: --python-version "$py" $platforms --no-deps \
        --dest "$WHEELS" "hyperscan>=0.7" 2>/dev/null || echo "no hyperscan wheel for $py" >&2
done

# --- a starter config: what `logwatch init` writes with no destination yet -------
# made by a venv installed from the wheels alone, which also proves the set is complete
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links "$WHEELS" "$NAME[metrics]==$VERSION"
# written from inside etc/logwatch, so that no build path is written into it; it is an
# unedited console-only starter, which a later `logwatch init` replaces without --force
install -d -m 0755 "$ROOT/etc/logwatch"
(cd "$ROOT/etc/logwatch" && "$WORK/venv/bin/logwatch" init --non-interactive -c logwatch.toml \
    >/dev/null)

# --- the rest of the tree -------------------------------------------------------
install -D -m 0644 "$REPO/systemd/logwatch.service" "$ROOT/lib/systemd/system/logwatch.service"
install -d -m 0755 "$ROOT/usr/bin" "$ROOT/usr/share/doc/$NAME"
ln -s /opt/logwatch/bin/logwatch "$ROOT/usr/bin/logwatch"
install -m 0644 "$REPO/README.md" "$REPO/docs/service.md" "$REPO/rules.example.toml" \
    "$ROOT/usr/share/doc/$NAME/"
install -m 0644 "$HERE/copyright" "$ROOT/usr/share/doc/$NAME/copyright"
chmod 0700 "$ROOT/etc/logwatch/credentials"

install -d "$ROOT/DEBIAN"
for script in postinst prerm postrm; do
    sed "s/@VERSION@/$VERSION/g" "$HERE/$script" > "$ROOT/DEBIAN/$script"
    chmod 0755 "$ROOT/DEBIAN/$script"
done
(cd "$ROOT" && find etc -type f | sed 's|^|/|' | sort) > "$ROOT/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" \
    "$HERE/control" > "$ROOT/DEBIAN/control"

DEB=$OUT/${NAME}_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
