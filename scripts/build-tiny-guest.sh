#!/usr/bin/env bash
# Build a tiny Linux guest (kernel + BusyBox initramfs) for tests and demos.
#
# Usage: scripts/build-tiny-guest.sh [OUTDIR]     (default /var/cache/virtdash/tiny-guest)
#
# Produces OUTDIR/vmlinuz and OUTDIR/initrd.gz for direct kernel boot:
#   <kernel>OUTDIR/vmlinuz</kernel> <initrd>OUTDIR/initrd.gz</initrd>
#   <cmdline>console=tty0 console=ttyS0</cmdline>
# Also OUTDIR/vmlinux-pvh: the same kernel uncompressed (ELF, ~66 MB), which
# QEMU boots through its PVH entry point. Under TCG it reaches the prompt in
# ~4.7 s instead of ~10 s (the bzImage spends ~5 s in its own xz decompressor),
# BUT the VGA/VNC screen then stays on SeaBIOS (no text console without the
# bzImage boot protocol): use it only for serial-console-only tests.
# The guest prints "VIRTDASH-TINY-READY" on the console, then runs root shells
# on ttyS0 (serial) and tty1 (VNC screen), and powers off on an ACPI power
# button press (`virsh shutdown`).
# With `virtdash.dhcp` on the kernel command line (network tests) it also loads
# the e1000 NIC driver and runs udhcpc on eth0 in the background, sending the
# host name virtdash-tiny; without it nothing about the network changes.
#
# Quirks handled:
#  - kernel and busybox come from Debian 12 packages (`apt-get download`, no
#    install), so the host's own busybox/kernel don't matter;
#  - only vmlinuz and the two modules are pulled out of the ~400 MB kernel
#    package (dpkg-deb --fsys-tarfile | tar with wildcards);
#  - the NIC driver (e1000, no dependencies) is a module in Debian's kernel,
#    so e1000.ko travels in the initramfs; udhcpc needs a hook script to
#    configure the address it got (BusyBox ships none);
#  - busybox acpid needs the input devices from button.ko + evdev.ko, and
#    /var/run for its pid file; modules may be .ko.xz: decompressed here;
#  - the kernel opens /dev/console before /init runs: the node is put into the
#    cpio when mknod is allowed, and /init re-opens it after devtmpfs anyway;
#  - QEMU runs as libvirt-qemu: files 644, dirs 755, parents must be traversable.
# Rebuilt only when the outputs are missing or this script changed (stamp).
set -euo pipefail

OUTDIR=${1:-/var/cache/virtdash/tiny-guest}
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPT_SUM=$(sha256sum "$SCRIPT_PATH" | cut -d' ' -f1)
STAMP="$OUTDIR/.build-stamp"

log() { printf 'build-tiny-guest: %s\n' "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

if [[ -f "$OUTDIR/vmlinuz" && -f "$OUTDIR/initrd.gz" && -f "$STAMP" ]] &&
    [[ "$(cat "$STAMP")" == "$SCRIPT_SUM" ]]; then
    log "up to date in $OUTDIR (stamp matches); nothing to do"
    exit 0
fi

for tool in apt-get apt-cache dpkg-deb cpio gzip tar xz python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (apt-get install cpio?)"
done

WORK=$(mktemp -d /tmp/tiny-guest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK" # lets _apt write the downloads (no "unsandboxed" warning)

# Newest Debian 12 6.1 kernel image (signed flavour, not -unsigned/-dbg).
newest_kernel_pkg() {
    apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' |
        awk '{print $1}' | sort -V | tail -n1
}
KPKG=$(newest_kernel_pkg)
if [[ -z "$KPKG" ]]; then
    # apt-cache finds nothing before the first `apt-get update`.
    log "no kernel package in the apt lists; running apt-get update"
    apt-get update -qq
    KPKG=$(newest_kernel_pkg)
fi
[[ -n "$KPKG" ]] || die "no linux-image-6.1.0-*-amd64 package found"
log "kernel package: $KPKG"

# apt-get download as root warns when _apt cannot write the folder: let it.
mkdir -p "$WORK/debs"
if id _apt >/dev/null 2>&1; then chown _apt "$WORK/debs"; fi
(cd "$WORK/debs" && apt-get download -q "$KPKG" busybox-static) ||
    die "apt-get download failed"

# Extract only what we need from the packages.
mkdir -p "$WORK/kpkg" "$WORK/bbpkg"
dpkg-deb --fsys-tarfile "$WORK"/debs/linux-image-*.deb |
    tar -x -C "$WORK/kpkg" --wildcards './boot/vmlinuz-*' \
        '*/kernel/drivers/acpi/button.ko*' '*/kernel/drivers/input/evdev.ko*' \
        '*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko*'
dpkg-deb --fsys-tarfile "$WORK"/debs/busybox-static_*.deb |
    tar -x -C "$WORK/bbpkg" ./bin/busybox

# Find one file in the extracted tree (exactly one expected).
find_one() {
    local found
    found=$(find "$1" -name "$2" | head -n1)
    [[ -n "$found" ]] || die "not found in package: $2"
    printf '%s\n' "$found"
}
VMLINUZ=$(find_one "$WORK/kpkg/boot" 'vmlinuz-*')
KVER=${VMLINUZ##*/vmlinuz-}

# --- initramfs tree ---------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc/acpi/PWRF,lib/modules,var/run,var/log}
install -m 755 "$WORK/bbpkg/bin/busybox" "$R/bin/busybox"
# Console node for the kernel's first open; ignore failure (no CAP_MKNOD).
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || log "note: mknod not allowed; /init re-opens the console"

for mod in button evdev e1000; do
    src=$(find_one "$WORK/kpkg" "$mod.ko*")
    case "$src" in
        *.ko.xz) xz -dc "$src" >"$R/lib/modules/$mod.ko" ;;
        *.ko.zst) zstd -qdc "$src" >"$R/lib/modules/$mod.ko" ;;
        *.ko.gz) gzip -dc "$src" >"$R/lib/modules/$mod.ko" ;;
        *) cp "$src" "$R/lib/modules/$mod.ko" ;;
    esac
done

cat >"$R/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the VirtDash tiny guest: set up, then hand over to busybox init.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tmpfs tmpfs /tmp
hostname virtdash-tiny
# ACPI power button -> /dev/input/event* -> busybox acpid -> poweroff
insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
i=0
while [ ! -e /dev/input/event0 ] && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
acpid -l /var/log/acpid.log || echo "virtdash-tiny: acpid failed to start"
# Network tests: NIC + DHCP in the background (never delays the prompt).
if grep -qw virtdash.dhcp /proc/cmdline; then
    insmod /lib/modules/e1000.ko
    ip link set lo up
    udhcpc -f -i eth0 -x hostname:virtdash-tiny -s /etc/udhcpc.script </dev/null >/dev/console 2>&1 &
fi
echo "VIRTDASH-TINY-READY"
[ -e /dev/tty1 ] && echo "VIRTDASH-TINY-READY" >/dev/tty1
# Boot probe (manage.py check_kvm): power off at once, so "reached userspace" is visible to
# libvirt as the domain stopping, without reading any console.
grep -qw virtdash.probe /proc/cmdline && poweroff -f
exec /bin/busybox init
EOF

cat >"$R/etc/inittab" <<'EOF'
# busybox init: direct root shells (no getty/login), respawned on exit.
ttyS0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/sbin/poweroff
::shutdown:/bin/umount -a -r
EOF

cat >"$R/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PS1='\h:\w# '
EOF

# busybox acpid: KEY_POWER maps to key PWRF, whose action runs /etc/acpi/PWRF/00000080.
cat >"$R/etc/acpid.conf" <<'EOF'
PWRF PWRF/00000080
EOF
cat >"$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "virtdash-tiny: ACPI power button, powering off" >/dev/console
# -f: skip init's TERM/KILL rounds (~2 s of sleeps); RAM-only, nothing to save.
sync
exec /sbin/poweroff -f
EOF
chmod 755 "$R/init" "$R/etc/acpi/PWRF/00000080"

# udhcpc hook (virtdash.dhcp only): configure the leased address and default route.
cat >"$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        echo "virtdash-tiny: dhcp $interface $ip" ;;
esac
exit 0
EOF
chmod 755 "$R/etc/udhcpc.script"

echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"

# --- pack -------------------------------------------------------------------
mkdir -p "$OUTDIR"
chmod 755 "$OUTDIR"
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible) |
    gzip -9 -n >"$WORK/initrd.gz"
install -m 644 "$WORK/initrd.gz" "$OUTDIR/initrd.gz"
install -m 644 "$VMLINUZ" "$OUTDIR/vmlinuz"
# Uncompressed kernel for PVH boot: unpack the xz payload inside the bzImage.
XZ_AT=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().find(b"\xfd7zXZ\x00"))' "$VMLINUZ")
if (( XZ_AT >= 0 )); then
    # xz complains about the trailing bzImage data after the stream: ignore that.
    tail -c +"$((XZ_AT + 1))" "$VMLINUZ" | xz -dcq >"$WORK/vmlinux" 2>/dev/null || true
fi
if [[ -s "$WORK/vmlinux" ]] && [[ "$(head -c 4 "$WORK/vmlinux" | od -An -c | tr -d ' ')" == *ELF* ]]; then
    install -m 644 "$WORK/vmlinux" "$OUTDIR/vmlinux-pvh"
else
    log "note: could not unpack an ELF vmlinux from the bzImage; no vmlinux-pvh"
    rm -f "$OUTDIR/vmlinux-pvh"
fi
printf '%s\n' "$KVER" >"$OUTDIR/kernel-version"
chmod 644 "$OUTDIR/kernel-version"
printf '%s\n' "$SCRIPT_SUM" >"$STAMP"
chmod 644 "$STAMP"

# libvirt-qemu must be able to reach OUTDIR: warn about closed parents.
dir=$(readlink -f "$OUTDIR")
while [[ "$dir" != / ]]; do
    if [[ $(( 0$(stat -c '%a' "$dir") & 1 )) -eq 0 ]]; then
        log "WARNING: $dir is not traversable by others; QEMU (libvirt-qemu) cannot read the guest files"
    fi
    dir=$(dirname "$dir")
done

log "built $OUTDIR/vmlinuz ($KVER, $(stat -c %s "$OUTDIR/vmlinuz") bytes)"
[[ -f "$OUTDIR/vmlinux-pvh" ]] && log "built $OUTDIR/vmlinux-pvh ($(stat -c %s "$OUTDIR/vmlinux-pvh") bytes, PVH boot, serial only)"
log "built $OUTDIR/initrd.gz ($(stat -c %s "$OUTDIR/initrd.gz") bytes)"
