#!/bin/sh
# Print the path of a cached Debian 12 root tree for the system test, building it
# with debootstrap on first use. The cache is keyed by suite, variant, package
# list and mirror, so changing any of them builds a fresh tree.
#   LOGWATCH_SYSTEST_CACHE  where trees are kept (default /var/cache/logwatch-systest)
#   LOGWATCH_SYSTEST_MIRROR the Debian mirror (default: the machine's configured one)
set -eu

SUITE=bookworm
VARIANT=minbase
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv
CACHE=${LOGWATCH_SYSTEST_CACHE:-/var/cache/logwatch-systest}

configured_mirror() {
    # deb822 (debian.sources) first, then one-line sources.list
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '/^URIs:/ { print $2; exit }' "$f" | grep -v security && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' "$f" | grep . && return 0
    done
    echo http://deb.debian.org/debian
}

MIRROR=${LOGWATCH_SYSTEST_MIRROR:-$(configured_mirror | head -n1)}
KEY=$(printf '%s %s %s %s' "$SUITE" "$VARIANT" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
TREE=$CACHE/$SUITE-$KEY

if [ ! -e "$TREE/.complete" ]; then
    mkdir -p "$CACHE"
    rm -rf "$TREE.partial"
    debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$TREE.partial" "$MIRROR" \
        >"$CACHE/debootstrap-$KEY.log" 2>&1 \
        || { echo "debootstrap failed, see $CACHE/debootstrap-$KEY.log" >&2; exit 1; }
    rm -rf "$TREE"
    mv "$TREE.partial" "$TREE"
    touch "$TREE/.complete"
fi
echo "$TREE"
