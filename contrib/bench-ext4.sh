#!/usr/bin/env bash
# Runs the benchmarks of BENCHMARKS.md on a freshly made ext4 filesystem (default mount options,
# so no online `discard`), from a loop-mounted image. Needs root (or password-less sudo) for
# mount. Arguments go to the harness, e.g. `contrib/bench-ext4.sh --only burst`.
#
#   BENCH_IMG   the image file   (default: target/bench-ext4.img, 6 GiB, sparse)
#   BENCH_MNT   where to mount it (default: target/bench-fs)
#   BENCH_SIZE  the image's size (default 6G)
#   BENCH_INODE_RATIO  bytes per inode (default 4096: a 100,000-job tree has 700,000 files and
#               folders, more than mkfs's default of one inode per 16 KiB gives 6 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."

img=${BENCH_IMG:-target/bench-ext4.img}
mnt=${BENCH_MNT:-target/bench-fs}
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi

mkdir -p "$(dirname "$img")" "$mnt"
if ! mountpoint -q "$mnt"; then
    rm -f "$img"
    truncate -s "${BENCH_SIZE:-6G}" "$img"
    mkfs.ext4 -q -F -i "${BENCH_INODE_RATIO:-4096}" "$img"
    $sudo mount -o loop "$img" "$mnt"
    $sudo chmod 1777 "$mnt"
    trap '$sudo umount "$mnt"; rm -f "$img"' EXIT
fi
TMPDIR=$(cd "$mnt" && pwd) cargo bench --bench reviewer -- "$@"
