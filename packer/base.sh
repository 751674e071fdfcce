#!/usr/bin/env bash
# packer/base.sh OUTDIR [DEB] - the appliance's base disk, built offline
# from the machine's Debian mirror: mmdebstrap root -> ext4 filled without
# mounting -> extlinux on an MBR disk -> OUTDIR/base.qcow2. With DEB, the
# softswitch package is installed into it. With BUILD_KEY=FILE.pub, root
# accepts that key over SSH (for Packer only; the Packer build removes it).
# Prints each step with its time.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:?usage: base.sh OUTDIR [DEB]}
DEB=${2:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=/etc/apt/sources.list
step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
T0=$(date +%s)

ROOT="$OUT/rootfs"
rm -rf "$ROOT"
step "rootfs (mmdebstrap)"
hooks=(
  --customize-hook='echo softswitch > "$1/etc/hostname"'
  --customize-hook='printf "LABEL=softswitch-root / ext4 errors=remount-ro 0 1\n" > "$1/etc/fstab"'
  --customize-hook="install -m 0644 $HERE/rootfs/10-eth.network \"\$1/etc/systemd/network/10-eth.network\""
  --customize-hook="install -m 0644 $HERE/rootfs/ssh-host-keys.service \"\$1/etc/systemd/system/ssh-host-keys.service\""
  --customize-hook="install -m 0644 $HERE/rootfs/appliance-status.service \"\$1/etc/systemd/system/appliance-status.service\""
  --customize-hook="install -D -m 0755 $HERE/rootfs/appliance-status.sh \"\$1/usr/lib/softswitch-appliance/status\""
  --customize-hook="install -m 0644 $HERE/rootfs/softswitch-firstboot.service \"\$1/etc/systemd/system/softswitch-firstboot.service\""
  --customize-hook="install -D -m 0644 $HERE/rootfs/keepalived-appliance.conf \"\$1/etc/systemd/system/keepalived.service.d/appliance.conf\""
  --customize-hook="install -m 0755 $HERE/rootfs/nftables.conf \"\$1/etc/nftables.conf\""
  --customize-hook='chroot "$1" systemctl enable systemd-networkd ssh-host-keys.service appliance-status.service nftables.service softswitch-firstboot.service keepalived.service >/dev/null 2>&1'
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*'
  --customize-hook='chroot "$1" passwd --lock root >/dev/null'
)
if [ -n "${BUILD_KEY:-}" ]; then
  hooks+=(--customize-hook="mkdir -p -m 0700 \"\$1/root/.ssh\" && install -m 0600 $BUILD_KEY \"\$1/root/.ssh/authorized_keys\"")
fi
if [ -n "$DEB" ]; then
  hooks+=(--customize-hook="cp $DEB \"\$1/tmp/softswitch.deb\" && chroot \"\$1\" dpkg -i /tmp/softswitch.deb >/dev/null && rm \"\$1/tmp/softswitch.deb\"")
fi
mmdebstrap --quiet --variant=minbase \
  --include=systemd-sysv,udev,linux-image-amd64,openssh-server,iproute2,kmod,procps,adduser,keepalived,nftables,sudo,systemd-timesyncd,logrotate,ca-certificates \
  "${hooks[@]}" bookworm "$ROOT" "$SOURCES"

step "disk (ext4 + extlinux)"
RAW="$OUT/base.raw"
rm -f "$RAW"
truncate -s 2G "$RAW"
echo 'start=2048, type=83, bootable' | sfdisk --quiet "$RAW"
mkfs.ext4 -q -F -L softswitch-root -E offset=1048576 -d "$ROOT" "$RAW" 2047M
LOOP=$(losetup --find --show --offset 1048576 "$RAW")
MNT=$(mktemp -d)
cleanup() { umount "$MNT" 2>/dev/null || true; losetup -d "$LOOP" 2>/dev/null || true; rmdir "$MNT" 2>/dev/null || true; }
trap cleanup EXIT
mount "$LOOP" "$MNT"
mkdir -p "$MNT/boot/extlinux"
extlinux --install "$MNT/boot/extlinux" >/dev/null 2>&1
# The root by label: on a server the disk is sda or nvme0n1, not vda. The
# last console= (serial) is /dev/console, where the appliance's status goes.
cat > "$MNT/boot/extlinux/extlinux.conf" <<CONF
DEFAULT softswitch
TIMEOUT 1
LABEL softswitch
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=LABEL=softswitch-root ro console=tty0 console=ttyS0,115200 net.ifnames=0
CONF
umount "$MNT"
cleanup
trap - EXIT
dd if=/usr/lib/EXTLINUX/mbr.bin of="$RAW" bs=440 count=1 conv=notrunc status=none
qemu-img convert -O qcow2 "$RAW" "$OUT/base.qcow2"
rm -f "$RAW"
step "done in $(( $(date +%s) - T0 )) s: $OUT/base.qcow2"
