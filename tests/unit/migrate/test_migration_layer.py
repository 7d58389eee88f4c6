"""hosts.virt.migration pieces that need no second hypervisor: URIs, progress, failure words."""

from __future__ import annotations

import libvirt
import pytest

from hosts.virt import migration
from hosts.virt.errors import HostUnreachable


@pytest.mark.parametrize(("uri", "expected"), [
    ("qemu+tcp://127.0.0.3/system", "tcp://127.0.0.3"),
    ("qemu+ssh://root@kvm2.example.org/system", "tcp://kvm2.example.org"),
    ("qemu+tls://kvm3.example.org:16514/system", "tcp://kvm3.example.org"),
    ("qemu+ssh://[fd00::5]/system", "tcp://[fd00::5]"),
    ("qemu:///system", None),
])
def test_the_migration_uri_comes_from_the_destination_address(uri, expected):
    assert migration.migration_uri(uri) == expected


def test_params_carry_the_uri_and_an_optional_bandwidth():
    assert migration.live_params("qemu+tcp://10.0.0.2/system") == {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://10.0.0.2"}
    assert migration.live_params("qemu:///system", bandwidth_mib=50) == {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 50}


def test_progress_follows_the_remaining_data():
    assert migration.progress_of({"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": 0}).phase == "preparing"
    reading = migration.progress_of({"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": 100 * 2**20,
                                     "data_processed": 30 * 2**20, "data_remaining": 70 * 2**20})
    assert (reading.phase, reading.percent) == ("copying", 30)
    done = migration.progress_of({"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": 1,
                                  "data_processed": 5, "data_remaining": 0})
    assert done.percent == 99  # never 100 before libvirt says it finished
    assert migration.progress_of({"type": libvirt.VIR_DOMAIN_JOB_NONE}).phase == "finishing"


def _error(code: int, message: str, domain: int = libvirt.VIR_FROM_QEMU) -> libvirt.libvirtError:
    exc = libvirt.libvirtError(message)
    exc.err = (code, domain, message, 2, None, None, None, 0, 0)
    return exc


def test_failures_are_explained_in_operator_words():
    cpu = migration.explain(_error(libvirt.VIR_ERR_CPU_INCOMPATIBLE, "the CPU is incompatible with host CPU: "
                                   "Host CPU does not provide required features: avx512f"), "web1")
    assert "destination's CPU cannot run web1" in str(cpu) and "avx512f" in str(cpu)
    unsafe = migration.explain(_error(libvirt.VIR_ERR_MIGRATE_UNSAFE, "Unsafe migration: Migration without "
                                      "shared storage is unsafe"), "web1")
    assert "needs shared storage" in str(unsafe) and "storage copy" in str(unsafe)
    cancelled = migration.explain(_error(libvirt.VIR_ERR_OPERATION_ABORTED, "operation aborted: migration out "
                                         "job: canceled by client"), "web1")
    assert isinstance(cancelled, migration.MigrationCancelled) and "stays on the source host" in str(cancelled)
    port = migration.explain(_error(libvirt.VIR_ERR_OPERATION_FAILED, "unable to connect to server at "
                                    "'10.0.0.2:49152': Connection refused"), "web1")
    assert "migration ports" in str(port)
    rpc = migration.explain(_error(libvirt.VIR_ERR_RPC, "End of file while reading data", libvirt.VIR_FROM_RPC),
                            "web1")
    assert isinstance(rpc, HostUnreachable)
