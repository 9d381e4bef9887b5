"""Unit tests of the domain rules (plain Python: no Flask, no database, no real sleeping)."""
from __future__ import annotations

import copy

import pytest

from webapp.domain.errors import ImmutableFieldError, InvalidStateError, SystemVolumeRequired, ValidationError
from webapp.domain.migration import Migration, MigrationState, MigrationTarget
from webapp.domain.workloads import Credentials, MountPoint, Workload

ADMIN = Credentials("admin", "s3cret!", "CORP")
CLOUD = Credentials("cloud", "cl0ud!")


def workload(ip="10.0.0.10", storage=(("C:\\", 40), ("D:\\", 100), ("E:\\", 60))):
    return Workload(ip, ADMIN, [MountPoint(name, size) for name, size in storage])


def migration(selected=("C:\\", "D:\\"), state="not_started", source=None):
    return Migration(list(selected), source or workload(), MigrationTarget("aws", CLOUD), state)


def assert_invalid(excinfo, field, message):
    """The error names exactly ``field``, with a message containing ``message``."""
    assert set(excinfo.value.fields) == {field}
    assert any(message in m for m in excinfo.value.fields[field]), excinfo.value.fields


class FakeClock:
    """Stands in for ``time.sleep``: advances a fake clock and remembers each nap."""

    def __init__(self):
        self.now, self.naps = 0.0, []

    def sleep(self, seconds):
        self.naps.append(seconds)
        self.now += seconds


# --- errors ------------------------------------------------------------------------------------------

def test_validation_error_fields_and_prefix():
    error = ValidationError.single("name", "Bad name.").prefixed("storage.0")
    assert error.fields == {"storage.0.name": ["Bad name."]}
    assert ValidationError({"": ["x"]}).prefixed("target").fields == {"target": ["x"]}
    assert issubclass(ImmutableFieldError, ValidationError)


# --- Credentials -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field, message", [
    ({"username": "", "password": "p"}, "username", "Username is required."),
    ({"username": "   ", "password": "p"}, "username", "Username is required."),
    ({"username": None, "password": "p"}, "username", "Username is required."),
    ({"username": "u", "password": ""}, "password", "Password is required."),
    ({"username": "u", "password": 1234}, "password", "Password is required."),
    ({"username": "u", "password": "p", "domain": None}, "domain", "Domain must be text."),
])
def test_credentials_refused(kwargs, field, message):
    with pytest.raises(ValidationError) as excinfo:
        Credentials(**kwargs)
    assert_invalid(excinfo, field, message)


@pytest.mark.parametrize("domain", ["", "CORP"])
def test_credentials_accepted_and_password_never_shown(domain):
    creds = Credentials("admin", "hunter2", domain)
    assert (creds.username, creds.password, creds.domain) == ("admin", "hunter2", domain)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "hunter2" not in text and "admin" in text


# --- MountPoint --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, size, field, message", [
    ("", 10, "name", "Volume name is required"),
    ("   ", 10, "name", "Volume name is required"),
    (None, 10, "name", "Volume name is required"),
    ("C:", 0, "size", "Size must be greater than 0 GiB."),
    ("C:", -5, "size", "Size must be greater than 0 GiB."),
    ("C:", True, "size", "Size must be a whole number of GiB."),
    ("C:", 1.5, "size", "Size must be a whole number of GiB."),
    ("C:", "10", "size", "Size must be a whole number of GiB."),
])
def test_mount_point_refused(name, size, field, message):
    with pytest.raises(ValidationError) as excinfo:
        MountPoint(name, size)
    assert_invalid(excinfo, field, message)


@pytest.mark.parametrize("spelling", ["c:", "C:", "c:\\", "C:\\", " c:/ "])
def test_mount_point_names_normalised_and_compared_by_value(spelling):
    mount = MountPoint(spelling, 40)
    assert mount.name == "C:\\"
    assert mount == MountPoint("C:\\", 40)
    assert hash(mount) == hash(MountPoint("C:\\", 40))
    assert len({mount, MountPoint("C:\\", 40)}) == 1
    assert mount != MountPoint("C:\\", 41)
    assert mount != MountPoint("D:\\", 40)


# --- Workload ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("ip, credentials, storage, field, message", [
    ("", ADMIN, [], "ip", "Enter a valid IPv4 or IPv6 address."),
    ("10.0.0", ADMIN, [], "ip", "Enter a valid IPv4 or IPv6 address."),
    ("256.1.1.1", ADMIN, [], "ip", "Enter a valid IPv4 or IPv6 address."),
    ("localhost", ADMIN, [], "ip", "Enter a valid IPv4 or IPv6 address."),
    (None, ADMIN, [], "ip", "Enter a valid IPv4 or IPv6 address."),
    ("10.0.0.1", None, [], "credentials", "Credentials are required."),
    ("10.0.0.1", {"username": "u", "password": "p"}, [], "credentials", "Credentials are required."),
    ("10.0.0.1", ADMIN, [MountPoint("C:", 1), MountPoint("c:\\", 2)], "storage.1.name", "Volume C:\\ is listed twice."),
    ("10.0.0.1", ADMIN, ["C:\\"], "storage.0", "Each volume needs a name and a size."),
    ("10.0.0.1", ADMIN, None, "storage", "Storage must be a list of volumes."),
])
def test_workload_refused(ip, credentials, storage, field, message):
    with pytest.raises(ValidationError) as excinfo:
        Workload(ip, credentials, storage)
    assert_invalid(excinfo, field, message)


def test_workload_reports_every_bad_field_at_once():
    with pytest.raises(ValidationError) as excinfo:
        Workload("nope", None, [MountPoint("D:", 1), MountPoint("d:/", 1)])
    assert set(excinfo.value.fields) == {"ip", "credentials", "storage.1.name"}


@pytest.mark.parametrize("given, stored", [
    ("10.0.0.1", "10.0.0.1"), (" 10.0.0.1 ", "10.0.0.1"), ("::0001", "::1"),
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
])
def test_workload_ip_normalised(given, stored):
    assert workload(ip=given).ip == stored


@pytest.mark.parametrize("new_ip", ["10.0.0.11", "::1", "not an ip", None])
def test_workload_ip_can_never_change(new_ip):
    machine = workload(ip="10.0.0.10")
    with pytest.raises(ImmutableFieldError) as excinfo:
        machine.ip = new_ip
    assert "ip" in excinfo.value.fields
    assert machine.ip == "10.0.0.10"


@pytest.mark.parametrize("same_ip", ["::1", "::0001", "0:0:0:0:0:0:0:1"])
def test_workload_ip_may_be_set_to_itself_in_any_spelling(same_ip):
    machine = workload(ip="::1")
    machine.ip = same_ip
    assert machine.ip == "::1"


# --- MigrationTarget ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cloud_type", ["aws", "azure", "vsphere", "vcloud"])
def test_target_accepts_known_clouds_and_has_no_vm_yet(cloud_type):
    target = MigrationTarget(cloud_type, CLOUD)
    assert target.cloud_type == cloud_type
    assert target.cloud_credentials == CLOUD
    assert target.target_vm is None


@pytest.mark.parametrize("cloud_type, credentials, field, message", [
    ("AWS", CLOUD, "cloud_type", "Cloud type must be one of: aws, azure, vsphere, vcloud."),
    ("gcp", CLOUD, "cloud_type", "Cloud type must be one of"),
    ("", CLOUD, "cloud_type", "Cloud type must be one of"),
    (None, CLOUD, "cloud_type", "Cloud type must be one of"),
    (" aws", CLOUD, "cloud_type", "Cloud type must be one of"),
    ("aws", None, "cloud_credentials", "Cloud credentials are required."),
])
def test_target_refused(cloud_type, credentials, field, message):
    with pytest.raises(ValidationError) as excinfo:
        MigrationTarget(cloud_type, credentials)
    assert_invalid(excinfo, field, message)


# --- Migration: construction -------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["not_started", "running", "error", "success"])
def test_migration_accepts_known_states(state):
    assert migration(state=state).state == state


@pytest.mark.parametrize("selected, field, message", [
    ([], "selected_mount_points", "Select at least one volume."),
    (["C:", "c:\\"], "selected_mount_points", "A volume is selected twice."),
    (["C:", "Z:"], "selected_mount_points", "Not a volume of the source workload: Z:\\."),
    ("C:\\", "selected_mount_points", "Select volumes by name"),
    ([None], "selected_mount_points", "Select volumes by name"),
])
def test_migration_selection_refused(selected, field, message):
    with pytest.raises(ValidationError) as excinfo:
        Migration(selected, workload(), MigrationTarget("aws", CLOUD))
    assert_invalid(excinfo, field, message)


@pytest.mark.parametrize("change, field", [
    ({"state": "paused"}, "state"), ({"source": None}, "source"), ({"target": None}, "target"),
])
def test_migration_refuses_bad_state_source_or_target(change, field):
    args = {"selected_mount_points": ["C:"], "source": workload(), "target": MigrationTarget("aws", CLOUD), **change}
    with pytest.raises(ValidationError) as excinfo:
        Migration(**args)
    assert set(excinfo.value.fields) == {field}


def test_migration_selection_names_normalised():
    assert migration(selected=["c:", "e:/"]).selected_mount_points == ["C:\\", "E:\\"]


# --- Migration: preview and run ----------------------------------------------------------------------

def test_preview_shows_only_selected_volumes_and_changes_nothing():
    job = migration(selected=["e:", "C:"])
    before = copy.deepcopy(job.source)
    vm = job.preview()
    assert (vm.ip, vm.credentials) == ("10.0.0.10", ADMIN)
    assert [(m.name, m.size) for m in vm.storage] == [("C:\\", 40), ("E:\\", 60)]
    assert job.state == MigrationState.NOT_STARTED and job.percent == 0
    assert job.target.target_vm is None and job.source == before


def test_run_without_system_volume_is_refused():
    job = migration(selected=["D:"])
    with pytest.raises(SystemVolumeRequired):
        job.run(5, sleep=FakeClock().sleep)
    assert job.state == MigrationState.ERROR
    assert "system volume C:\\ must be selected" in job.error
    assert job.target.target_vm is None


@pytest.mark.parametrize("selected, duration, expected", [
    (["C:", "D:"], 7.0, {"C:\\": 2.0, "D:\\": 5.0}),
    (["c:\\", "d:", "e:"], 10.0, {"C:\\": 2.0, "D:\\": 5.0, "E:\\": 3.0}),
    (["C:"], 3.0, {"C:\\": 3.0}),
])
def test_run_copies_volume_by_volume_in_time_proportional_to_size(selected, duration, expected):
    job, clock = migration(selected=selected), FakeClock()
    slept, copied, percents = dict.fromkeys(expected, 0.0), {}, [job.percent]
    last_call = [0.0]

    def on_progress(progress):
        grown = [v.name for v in progress if v.copied > copied.get(v.name, 0.0)]
        waited, last_call[0] = clock.now - last_call[0], clock.now
        assert len(grown) <= 1, "one volume at a time"
        assert not waited or grown, "time slept must copy something"
        for name in grown:
            slept[name] += waited
        copied.update({v.name: v.copied for v in progress})
        percents.append(job.percent)

    job.run(duration, on_progress=on_progress, tick=0.5, sleep=clock.sleep)

    assert job.state == MigrationState.SUCCESS and job.error is None
    assert slept == pytest.approx(expected)
    assert sum(clock.naps) == pytest.approx(duration)
    assert max(clock.naps) <= 0.5
    assert percents[0] == 0 and percents[-1] == job.percent == 100
    assert percents == sorted(percents)


def test_success_creates_a_new_vm_with_only_the_selected_volumes_and_leaves_the_source_alone():
    job = migration(selected=["C:", "E:"])
    before = copy.deepcopy(job.source)
    job.run(1.0, sleep=FakeClock().sleep)
    vm = job.target.target_vm
    assert job.state == MigrationState.SUCCESS
    assert (vm.ip, vm.credentials) == (job.source.ip, job.source.credentials)
    assert vm.storage == [MountPoint("C:\\", 40), MountPoint("E:\\", 60)]
    assert vm.credentials is not job.source.credentials
    assert all(new is not old for new in vm.storage for old in job.source.storage)
    assert job.source == before and len(job.source.storage) == 3


def test_failure_ends_in_error_with_the_reason_and_leaves_the_target_alone():
    def broken(progress):
        raise RuntimeError("disk unreadable")

    job = migration()
    job.run(1.0, on_progress=broken, sleep=FakeClock().sleep)
    assert (job.state, job.error) == (MigrationState.ERROR, "disk unreadable")
    assert job.target.target_vm is None


@pytest.mark.parametrize("duration, stop_after_calls", [(2.0, 0), (2.0, 3), (0.0, 0)])
def test_should_stop_cancels_and_leaves_the_target_alone(duration, stop_after_calls):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > stop_after_calls

    job = migration()
    job.run(duration, should_stop=should_stop, tick=0.5, sleep=FakeClock().sleep)
    assert (job.state, job.error) == (MigrationState.ERROR, "cancelled")
    assert job.target.target_vm is None


@pytest.mark.parametrize("state", ["running", "success"])
def test_running_or_successful_migration_cannot_be_run_again(state):
    job = migration(state=state)
    with pytest.raises(InvalidStateError):
        job.check_can_run()
    with pytest.raises(InvalidStateError):
        job.start()
    assert job.state == state


def test_failed_migration_can_be_run_again():
    job, clock = migration(), FakeClock()
    job.run(1.0, should_stop=lambda: True, sleep=clock.sleep)
    assert job.state == MigrationState.ERROR
    job.check_can_run()
    job.run(1.0, sleep=clock.sleep)
    assert (job.state, job.error, job.percent) == (MigrationState.SUCCESS, None, 100)
    assert job.target.target_vm == job.preview()
    with pytest.raises(InvalidStateError):
        job.run(1.0, sleep=clock.sleep)


def test_the_target_plan_keeps_the_selected_volumes_in_the_sources_order_and_judges_the_system_volume():
    from webapp.domain.migration import SYSTEM_VOLUME, TargetPlan
    from webapp.domain.workloads import MountPoint

    storage = [MountPoint("C:\\", 40), MountPoint("D:\\", 100), MountPoint("E:\\", 60)]
    plan = TargetPlan.of(storage, ["e:", "c:\\"])
    assert [m.name for m in plan.kept] == ["C:\\", "E:\\"] and [m.name for m in plan.dropped] == ["D:\\"]
    assert plan.system_volume_selected and SYSTEM_VOLUME == "C:\\"
    without = TargetPlan.of(storage, ["D:\\", "Z:\\"])  # a name the source lacks is neither kept nor dropped
    assert [m.name for m in without.kept] == ["D:\\"] and not without.system_volume_selected
