#!/usr/bin/env bash
# packer/image.sh OUTDIR - the whole appliance image from nothing, each
# step with its time: the .deb, a build-only SSH key, the base disk
# (base.sh), then packer validate and packer build (qemu, TCG).
# Result: OUTDIR/image/softswitch.qcow2 (OUTDIR/image must not exist).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${1:?usage: image.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export CHECKPOINT_DISABLE=1 PACKER_NO_COLOR=1 PACKER_CACHE_DIR="$OUT/packer_cache"
step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
T0=$(date +%s)

step "package"
DEB=$(bash "$REPO/appliance/deb/build.sh" "$OUT/dist")
step "build key"
rm -f "$OUT/build-key" "$OUT/build-key.pub"
ssh-keygen -q -t ed25519 -N '' -C softswitch-image-build -f "$OUT/build-key"
step "base disk"
BUILD_KEY="$OUT/build-key.pub" bash "$HERE/base.sh" "$OUT/base"
rm -rf "$OUT/image"
vars=(-var "base=$OUT/base/base.qcow2" -var "deb=$DEB" -var "ssh_key=$OUT/build-key" -var "output=$OUT/image")
step "packer validate"
packer validate "${vars[@]}" "$HERE/softswitch.pkr.hcl"
step "packer build"
packer build -color=false "${vars[@]}" "$HERE/softswitch.pkr.hcl" > "$OUT/packer.log" 2>&1 || {
    tail -30 "$OUT/packer.log"; exit 1; }
rm -f "$OUT/build-key" "$OUT/build-key.pub"
step "done in $(( $(date +%s) - T0 )) s: $OUT/image/softswitch.qcow2"
