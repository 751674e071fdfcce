#!/usr/bin/env bash
# appliance/deb/build.sh - builds the softswitch Debian package with dpkg-deb.
#
#   bash appliance/deb/build.sh [OUTDIR]      -> OUTDIR/softswitch_VERSION_ARCH.deb (default: ./dist)
#
# VERSION defaults to 0.<commit count>.0~g<short hash> from git (a rebuilt
# tree gets a higher version after a commit); set VERSION=... to override.
# BIN=path packages that binary instead of building ./cmd/softswitch.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$REPO/dist}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ -z "${VERSION:-}" ]; then
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        VERSION="0.$(git -C "$REPO" rev-list --count HEAD).0~g$(git -C "$REPO" rev-parse --short HEAD)"
    else
        VERSION="0.0.0"
    fi
fi
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/softswitch-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/root"

install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/softswitch" \
    "$ROOT/usr/share/doc/softswitch"

if [ -n "${BIN:-}" ]; then
    install -m 0755 "$BIN" "$ROOT/usr/bin/softswitch"
else
    # Static (no libc dependency) and position independent (ASLR).
    (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -buildmode=pie -ldflags=-s -o "$ROOT/usr/bin/softswitch" ./cmd/softswitch)
    chmod 0755 "$ROOT/usr/bin/softswitch"
fi
# The pair's health check, run by keepalived every couple of seconds: a
# small binary of its own (appliance/ha.CheckBinary).
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -buildmode=pie -ldflags=-s -o "$ROOT/usr/bin/softswitch-check" ./cmd/softswitch-check)
chmod 0755 "$ROOT/usr/bin/softswitch-check"
install -m 0644 "$HERE/debian/softswitch.service" "$ROOT/lib/systemd/system/softswitch.service"
install -m 0644 "$HERE/debian/softswitch.toml" "$ROOT/etc/softswitch/softswitch.toml"
install -m 0644 "$HERE/debian/conffiles" "$ROOT/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$HERE/debian/$s" "$ROOT/DEBIAN/$s"
done
install -m 0644 "$REPO/README.md" "$ROOT/usr/share/doc/softswitch/README.md"
for d in config.md numbering.md causes.md install.md cdr.md billing.md aaa.md snmp.md dictionary.softswitch; do
    install -m 0644 "$REPO/docs/$d" "$ROOT/usr/share/doc/softswitch/$d"
done
# Where net-snmp and NMS look for MIB modules (docs/snmp.md).
install -d "$ROOT/usr/share/snmp/mibs"
install -m 0644 "$REPO/oam/snmp/mib/SOFTSWITCH-MIB.txt" "$ROOT/usr/share/snmp/mibs/SOFTSWITCH-MIB.txt"
install -m 0644 "$HERE/debian/copyright" "$ROOT/usr/share/doc/softswitch/copyright"
{
    echo "softswitch ($VERSION) unstable; urgency=medium"
    echo
    echo "  * Built from commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo
    echo " -- softswitch builders <builders@softswitch.invalid>  $(date -R)"
} | gzip -9n > "$ROOT/usr/share/doc/softswitch/changelog.gz"
chmod 0644 "$ROOT/usr/share/doc/softswitch/changelog.gz"

SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CTRL
Package: softswitch
Version: $VERSION
Architecture: $ARCH
Maintainer: softswitch builders <builders@softswitch.invalid>
Installed-Size: $SIZE
Depends: adduser
Section: net
Priority: optional
Homepage: https://softswitch.invalid/
Description: carrier-grade SIP softswitch
 Registrar, B2BUA call control, number analysis and routing through
 interworking gateways with probing and failover, for an active-standby
 appliance pair. Configuration: /etc/softswitch/softswitch.toml; data
 (registrations, routing tables): /var/lib/softswitch.
CTRL

DEB="$OUT/softswitch_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
