#!/usr/bin/env bash
# Boot the tiny guest on a real libvirtd and check it end to end.
#
# Usage: scripts/check-tiny-guest.sh [GUEST_DIR]   (default /var/cache/virtdash/tiny-guest)
#   env: LIBVIRT_URI (default qemu:///system), BOOT_TIMEOUT (60 s),
#        SHUTDOWN_TIMEOUT (15 s), KEEP_SCREENSHOT / KEEP_CONSOLE = paths to keep
#        the PNG / the serial console output, TINY_KERNEL (vmlinuz, or
#        vmlinux-pvh for the faster serial-only boot; its screen stays blank).
#
# Starts a transient guest `vdtest-tiny-<random>` (TCG, 96 MiB, 1 vCPU, direct
# kernel boot, serial pty console, VNC on 127.0.0.1, no NIC), then checks:
#   1. the banner and a shell prompt appear on the serial console (timed),
#   2. a command typed on the serial console runs (`echo vd-$((6*7))` -> vd-42),
#   3. `virsh screenshot` returns a PNG,
#   4. `virsh shutdown` (ACPI power button) powers it off (timed).
# It only ever touches the one domain it created; it is destroyed on exit.
#
# Quirks handled:
#  - type='qemu' (TCG) only: /dev/kvm here is a fake that hangs Linux guests;
#  - <features><acpi/></features> is required, or the power button does nothing;
#  - the serial pty is read continuously (an undrained console slows the
#    guest's serial output to about a line a second); the host side of the pty
#    is put in raw mode so it neither echoes nor rewrites line endings.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_DIR=$(readlink -f "${1:-/var/cache/virtdash/tiny-guest}")
URI=${LIBVIRT_URI:-qemu:///system}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT:-15}
KERNEL_FILE=${TINY_KERNEL:-vmlinuz}
NAME="vdtest-tiny-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"

log() { printf 'check-tiny-guest: %s\n' "$*"; }
fail() { log "FAIL: $*" >&2; exit 1; }
virsh_() { virsh -q -c "$URI" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

WORK=$(mktemp -d /tmp/vdtest-tiny.XXXXXX)
cleanup() {
    # Only our own domain: transient, so destroy also removes it.
    if virsh_ domstate "$NAME" >/dev/null 2>&1; then
        virsh_ destroy "$NAME" >/dev/null 2>&1 || true
        virsh_ undefine "$NAME" >/dev/null 2>&1 || true
        log "cleaned up $NAME"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ "$URI" == qemu:///system ]]; then
    "$HERE/libvirtd-up.sh" >/dev/null
fi
"$HERE/build-tiny-guest.sh" "$GUEST_DIR" >/dev/null

cat >"$WORK/domain.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$GUEST_DIR/$KERNEL_FILE</kernel>
    <initrd>$GUEST_DIR/initrd.gz</initrd>
    <cmdline>console=tty0 console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video><model type='vga'/></video>
  </devices>
</domain>
EOF

T0=$(now)
virsh_ create "$WORK/domain.xml" >/dev/null || fail "virsh create failed"
T_STARTED=$(now)
log "started $NAME ($KERNEL_FILE) in $(elapsed "$T0" "$T_STARTED") s"
PTY=$(virsh_ ttyconsole "$NAME")
[[ -c "$PTY" ]] || fail "no serial pty (got '$PTY')"

# Read the serial console: wait for banner + prompt, then run a command.
python3 - "$PTY" "$T0" "$BOOT_TIMEOUT" >"$WORK/console.result" 2>"$WORK/console.log" <<'PYEOF' ||
import os, sys, termios, time, tty, select

pty, t0, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
fd = os.open(pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
tty.setraw(fd)
buf = b""

def wait_for(marker, deadline):
    """Read (and log) console output until marker shows up after the start."""
    global buf
    while marker not in buf:
        left = deadline - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            sys.stderr.write(chunk.decode("utf-8", "replace"))
            buf += chunk
    return True

deadline = t0 + timeout
if not wait_for(b"VIRTDASH-TINY-READY", deadline):
    sys.exit("no VIRTDASH-TINY-READY banner within %ds" % timeout)
t_banner = time.time()
buf = buf.split(b"VIRTDASH-TINY-READY", 1)[1]
if not wait_for(b"# ", deadline):
    sys.exit("no shell prompt after the banner")
t_prompt = time.time()
buf = b""
os.write(fd, b"echo vd-$((6*7))\r")
if not wait_for(b"vd-42", time.time() + 10):
    sys.exit("command on the serial console gave no vd-42")
t_cmd = time.time()
print("banner=%.2f prompt=%.2f command=%.2f" % (t_banner - t0, t_prompt - t0, t_cmd - t_prompt))
PYEOF
    { tail -n 30 "$WORK/console.log" >&2; fail "serial console check"; }
if [[ -n "${KEEP_CONSOLE:-}" ]]; then cp "$WORK/console.log" "$KEEP_CONSOLE"; fi
read -r CONSOLE_RESULT <"$WORK/console.result"
log "serial console OK (seconds from create): $CONSOLE_RESULT"

# Screenshot of the VGA screen over libvirt (PNG here, whatever the file name).
virsh_ screenshot "$NAME" "$WORK/screen.png" >/dev/null || fail "virsh screenshot failed"
if [[ "$(head -c 8 "$WORK/screen.png" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]]; then
    fail "screenshot is not a PNG"
fi
log "screenshot OK ($(stat -c %s "$WORK/screen.png") bytes PNG)"
if [[ -n "${KEEP_SCREENSHOT:-}" ]]; then cp "$WORK/screen.png" "$KEEP_SCREENSHOT"; fi

# ACPI shutdown: transient + on_poweroff=destroy, so the domain vanishes.
T_SD=$(now)
virsh_ shutdown "$NAME" --mode acpi >/dev/null || fail "virsh shutdown failed"
while state=$(virsh_ domstate "$NAME" 2>/dev/null) && [[ "$state" != "shut off" ]]; do
    if awk -v a="$T_SD" -v b="$(now)" -v t="$SHUTDOWN_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
        fail "still '$state' ${SHUTDOWN_TIMEOUT}s after virsh shutdown"
    fi
    sleep 0.1
done
log "ACPI shutdown OK: powered off $(elapsed "$T_SD" "$(now)") s after virsh shutdown"
log "PASS ($NAME)"
