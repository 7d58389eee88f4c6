#!/usr/bin/env bash
# Idempotently ensure a local libvirtd (qemu:///system) is running, without systemd.
#
# Usage: scripts/libvirtd-up.sh
#
# Quirks handled (see shared/ENVIRONMENT.md "libvirt and QEMU"):
#  - no systemd: daemons are started by hand (virtlogd -d, libvirtd -d);
#  - the QEMU driver refuses to load without the `libvirt-qemu` user;
#  - without DMI data the host UUID is random at every start: pin `host_uuid`;
#  - the first libvirtd start probes QEMU capabilities (~8 s): wait up to 60 s;
#  - /dev/kvm here is root-only (0600) and a fake: the QEMU capability probe
#    sees KVM, but libvirt then finds it "not available now" for libvirt-qemu
#    and re-probes QEMU (~4 s) on EVERY call that needs capabilities (version,
#    define, start...). Giving it Debian's usual root:kvm 0660 (what udev would
#    do) keeps the cache valid. Guests must still use type='qemu', never kvm;
#  - libvirt's `default` network must never be active or autostarted (its
#    bridge would take 192.168.122.1 in the root namespace).
set -euo pipefail

URI="qemu:///system"
CONF=/etc/libvirt/libvirtd.conf
WAIT_SECS=60

log() { printf 'libvirtd-up: %s\n' "$*"; }

virsh_answers() {
    timeout 5 virsh -c "$URI" version >/dev/null 2>&1
}

# Set `key = value` in libvirtd.conf only if no uncommented setting exists.
# Returns 0 if it changed the file.
conf_set_if_absent() {
    local key=$1 value=$2
    if grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$CONF"; then
        return 1
    fi
    printf '%s = %s\n' "$key" "$value" >>"$CONF"
    log "set ${key} = ${value} in ${CONF}"
    return 0
}

ensure_user() {
    if id libvirt-qemu >/dev/null 2>&1; then
        return
    fi
    getent group kvm >/dev/null || groupadd -r kvm
    useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
    log "created user libvirt-qemu"
}

# Debian's udev rule makes /dev/kvm root:kvm 0660; there is no udev here.
ensure_kvm_node_perms() {
    [[ -c /dev/kvm ]] || return 0
    if [[ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]]; then
        chgrp kvm /dev/kvm
        chmod 0660 /dev/kvm
        log "set /dev/kvm to root:kvm 0660 (keeps libvirt's QEMU capability cache valid)"
    fi
}

ensure_conf() {
    local changed=1
    mkdir -p "$(dirname "$CONF")"
    touch "$CONF"
    # A stable host UUID, generated once.
    if conf_set_if_absent host_uuid "\"$(cat /proc/sys/kernel/random/uuid)\""; then
        changed=0
    fi
    # max_client_requests / keepalive_*: libvirt's built-in defaults (5 / 5s / 5)
    # suit the dashboard, so they are deliberately left unset (minimal changes).
    return $changed
}

start_daemons() {
    mkdir -p /var/log/libvirt /run/libvirt
    if ! pgrep -x virtlogd >/dev/null; then
        virtlogd -d
        log "started virtlogd"
    fi
    if pgrep -x libvirtd >/dev/null; then
        # Running but not answering (e.g. still probing QEMU): just wait below.
        log "libvirtd already running (pid $(pgrep -x libvirtd | head -1)), waiting for it"
    else
        libvirtd -d
        log "started libvirtd"
    fi
    local start=$SECONDS
    # The first start probes QEMU (~8 s): allow a slow first answer.
    until timeout 15 virsh -c "$URI" version >/dev/null 2>&1; do
        if (( SECONDS - start >= WAIT_SECS )); then
            log "ERROR: virsh did not answer within ${WAIT_SECS}s; see /var/log/libvirt/libvirtd.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    log "libvirtd answers after $(( SECONDS - start ))s"
}

# Keep the `default` network inactive and not autostarted. Never start it.
ensure_default_network_off() {
    local info
    if ! info=$(virsh -c "$URI" net-info default 2>/dev/null); then
        return # not defined: nothing to do
    fi
    if grep -Eq '^Autostart:[[:space:]]+yes' <<<"$info"; then
        virsh -c "$URI" net-autostart default --disable >/dev/null
        log "disabled autostart of network 'default'"
    fi
    if grep -Eq '^Active:[[:space:]]+yes' <<<"$info"; then
        virsh -c "$URI" net-destroy default >/dev/null
        log "stopped network 'default'"
    fi
}

main() {
    if [[ $EUID -ne 0 ]]; then
        log "ERROR: must run as root" >&2
        exit 1
    fi
    ensure_user
    ensure_kvm_node_perms
    # Also drop the autostart link before libvirtd can act on it.
    if [[ -L /etc/libvirt/qemu/networks/autostart/default.xml ]]; then
        rm -f /etc/libvirt/qemu/networks/autostart/default.xml
        log "removed autostart link of network 'default'"
    fi
    local conf_changed=1
    if ensure_conf; then conf_changed=0; fi

    if virsh_answers; then
        if (( conf_changed == 0 )); then
            log "note: ${CONF} changed; restart libvirtd for it to take effect"
        fi
        log "libvirtd already answers on ${URI}: nothing to start"
    else
        start_daemons
    fi
    ensure_default_network_off
    log "host uuid: $(virsh -c "$URI" capabilities | grep -m1 -o '<uuid>[^<]*' | cut -c7-)"
    log "ok"
}

main "$@"
