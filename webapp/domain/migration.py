"""Workloads and their migration to a cloud.

Every class validates itself on construction and raises ``ValidationError`` with the paths of the
fields at fault, so the HTML forms and the JSON API share these rules instead of repeating them.
"""
from __future__ import annotations

import copy
import enum
import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import ImmutableFieldError, InvalidStateError, SystemVolumeRequired, ValidationError

SYSTEM_VOLUME = "C:\\"
_DRIVE = re.compile(r"^([A-Za-z]):[\\/]?$")


class CloudType(str, enum.Enum):
    AWS = "aws"
    AZURE = "azure"
    VSPHERE = "vsphere"
    VCLOUD = "vcloud"


class MigrationState(str, enum.Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    ERROR = "error"
    SUCCESS = "success"

    @property
    def is_final(self) -> bool:
        return self in (MigrationState.ERROR, MigrationState.SUCCESS)


def _collect(errors: dict[str, list[str]], path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def normalise_volume(name: str) -> str:
    """``c:``, ``C:``, ``c:\\`` and ``C:\\`` are one volume, written ``C:\\``; other names are trimmed."""
    name = name.strip()
    match = _DRIVE.match(name)
    return f"{match.group(1).upper()}:\\" if match else name


def normalise_ip(value: str) -> str:
    """The canonical text of an IPv4 or IPv6 address; ValueError if it is not one."""
    if not isinstance(value, str) or "%" in value:  # a zone id (fe80::1%eth0) names an interface
        raise ValueError(value)
    return ipaddress.ip_address(value.strip()).compressed


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    domain: str = ""

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        for name in ("username", "password"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                _collect(errors, name, f"{name.capitalize()} is required.")
            elif len(value) > 255 or "\0" in value:
                _collect(errors, name, f"{name.capitalize()} must be at most 255 characters, without NUL.")
        if not isinstance(self.domain, str):
            _collect(errors, "domain", "Domain must be text.")
        elif len(self.domain) > 255 or "\0" in self.domain:
            _collect(errors, "domain", "Domain must be at most 255 characters, without NUL.")
        if errors:
            raise ValidationError(errors)

    def __repr__(self) -> str:  # never print a password
        return f"Credentials(username={self.username!r}, password='***', domain={self.domain!r})"


@dataclass(frozen=True)
class TargetPlan:
    """Which of a source's volumes the target keeps, which it drops, and whether the C:\\ rule passes: what the
    migration page previews and a run does. Built from the volumes alone, so that a page polled every second
    needs no credentials (and so no decryption) to show it."""

    kept: list["MountPoint"]
    dropped: list["MountPoint"]
    system_volume_selected: bool

    @classmethod
    def of(cls, storage: Iterable["MountPoint"], selected: Iterable[str]) -> "TargetPlan":
        keys = {normalise_volume(name).upper() for name in selected}
        storage = list(storage)
        return cls([m for m in storage if m.key in keys], [m for m in storage if m.key not in keys],
                   SYSTEM_VOLUME.upper() in keys)


@dataclass(frozen=True, eq=False)
class MountPoint:
    """A volume; two mount points are equal when their normalised names and sizes are."""

    name: str
    size: int

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(self.name, str) or not self.name.strip():
            _collect(errors, "name", "Volume name is required, e.g. C:\\.")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            _collect(errors, "size", "Size must be a whole number of GiB.")
        elif self.size <= 0:
            _collect(errors, "size", "Size must be greater than 0 GiB.")
        if errors:
            raise ValidationError(errors)
        object.__setattr__(self, "name", normalise_volume(self.name))

    @property
    def key(self) -> str:
        return self.name.upper()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MountPoint):
            return NotImplemented
        return (self.key, self.size) == (other.key, other.size)

    def __hash__(self) -> int:
        return hash((self.key, self.size))


def _storage(storage: Iterable[MountPoint], *, allow_empty: bool = True) -> list[MountPoint]:
    if not isinstance(storage, (list, tuple)):
        raise ValidationError.single("storage", "Storage must be a list of volumes.")
    seen: dict[str, int] = {}
    errors: dict[str, list[str]] = {}
    for index, mount in enumerate(storage):
        if not isinstance(mount, MountPoint):
            _collect(errors, f"storage.{index}", "Each volume needs a name and a size.")
            continue
        if mount.key in seen:
            _collect(errors, f"storage.{index}.name", f"Volume {mount.name} is listed twice.")
        seen[mount.key] = index
    if not storage and not allow_empty:
        _collect(errors, "storage", "Add at least one volume.")
    if errors:
        raise ValidationError(errors)
    return list(storage)


class Workload:
    """A machine to migrate. Its IP address is fixed for life."""

    def __init__(self, ip: str, credentials: Credentials, storage: Iterable[MountPoint] = ()):
        errors: dict[str, list[str]] = {}
        try:
            if not isinstance(ip, str):
                raise ValueError
            self._ip = normalise_ip(ip)
        except ValueError:
            _collect(errors, "ip", "Enter a valid IPv4 or IPv6 address.")
        if not isinstance(credentials, Credentials):
            _collect(errors, "credentials", "Credentials are required.")
        try:
            try:  # any iterable of volumes; something else (e.g. None) is refused below, not a TypeError
                items = storage if isinstance(storage, (list, tuple)) else list(storage)
            except TypeError:
                items = None
            self.storage = _storage(items)
        except ValidationError as exc:
            errors.update(exc.fields)
        if errors:
            raise ValidationError(errors)
        self.credentials = credentials

    @property
    def ip(self) -> str:
        return self._ip

    @ip.setter
    def ip(self, value: str) -> None:
        try:
            same = normalise_ip(value) == self._ip
        except (ValueError, AttributeError):
            same = False
        if not same:
            raise ImmutableFieldError.single("ip", "The IP address of a workload can never change.")

    def volume(self, name: str) -> MountPoint | None:
        key = normalise_volume(name).upper()
        return next((m for m in self.storage if m.key == key), None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workload):
            return NotImplemented
        return (self.ip, self.credentials, self.storage) == (other.ip, other.credentials, other.storage)

    def __repr__(self) -> str:
        return f"Workload(ip={self.ip!r}, storage={[m.name for m in self.storage]!r})"


class MigrationTarget:
    def __init__(self, cloud_type: str, cloud_credentials: Credentials, target_vm: Workload | None = None):
        errors: dict[str, list[str]] = {}
        try:
            self.cloud_type = CloudType(cloud_type)
        except ValueError:
            allowed = ", ".join(c.value for c in CloudType)
            _collect(errors, "cloud_type", f"Cloud type must be one of: {allowed}.")
        if not isinstance(cloud_credentials, Credentials):
            _collect(errors, "cloud_credentials", "Cloud credentials are required.")
        if target_vm is not None and not isinstance(target_vm, Workload):
            _collect(errors, "target_vm", "The target VM must be a workload.")
        if errors:
            raise ValidationError(errors)
        self.cloud_credentials = cloud_credentials
        self.target_vm = target_vm


@dataclass
class VolumeProgress:
    name: str
    size: int
    copied: float = 0.0


ProgressCallback = Callable[[list[VolumeProgress]], None]


class Cancelled(Exception):
    """Raised by a ``should_stop`` callback's owner to end a run as cancelled."""


@dataclass
class Migration:
    """Copies the selected volumes of ``source`` to ``target``; ``run`` simulates the copy."""

    selected_mount_points: list[str]
    source: Workload
    target: MigrationTarget
    state: MigrationState = MigrationState.NOT_STARTED
    error: str | None = None
    progress: list[VolumeProgress] = field(default_factory=list)

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self.state = MigrationState(self.state)
        except ValueError:
            _collect(errors, "state", f"State must be one of: {', '.join(s.value for s in MigrationState)}.")
        if not isinstance(self.source, Workload):
            _collect(errors, "source", "The source workload is required.")
        if not isinstance(self.target, MigrationTarget):
            _collect(errors, "target", "The migration target is required.")
        if errors:
            raise ValidationError(errors)
        if not isinstance(self.selected_mount_points, (list, tuple)) or not all(
            isinstance(n, str) for n in self.selected_mount_points
        ):
            raise ValidationError.single("selected_mount_points", "Select volumes by name, e.g. [\"C:\\\\\"].")
        names = [normalise_volume(n) for n in self.selected_mount_points]
        if not names:
            _collect(errors, "selected_mount_points", "Select at least one volume.")
        if len({n.upper() for n in names}) != len(names):
            _collect(errors, "selected_mount_points", "A volume is selected twice.")
        missing = [n for n in names if self.source.volume(n) is None]
        if missing:
            _collect(errors, "selected_mount_points", f"Not a volume of the source workload: {', '.join(missing)}.")
        if errors:
            raise ValidationError(errors)
        self.selected_mount_points = names

    @property
    def plan(self) -> "TargetPlan":
        return TargetPlan.of(self.source.storage, self.selected_mount_points)

    @property
    def selected(self) -> list[MountPoint]:
        """The selected volumes, in the source's order."""
        return self.plan.kept

    @property
    def system_volume_selected(self) -> bool:
        return self.plan.system_volume_selected

    def preview(self) -> Workload:
        """The target VM exactly as a successful run will leave it."""
        return Workload(
            self.source.ip,
            copy.deepcopy(self.source.credentials),
            [MountPoint(m.name, m.size) for m in self.selected],
        )

    def check_can_run(self) -> None:
        if self.state in (MigrationState.RUNNING, MigrationState.SUCCESS):
            raise InvalidStateError(f"A migration that is {self.state.value} cannot be run.")
        if not self.system_volume_selected:
            raise SystemVolumeRequired("The system volume C:\\ must be selected.")

    def start(self) -> None:
        """Move to ``running`` or, when C:\\ is not selected, to ``error`` (and raise)."""
        try:
            self.check_can_run()
        except SystemVolumeRequired as exc:
            self.state, self.error = MigrationState.ERROR, str(exc)
            raise
        self.state, self.error = MigrationState.RUNNING, None
        self.progress = [VolumeProgress(m.name, m.size) for m in self.selected]

    def run(
        self,
        duration: float = 0.0,
        *,
        on_progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        tick: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Simulate the copy for ``duration`` seconds in total, volume by volume, time proportional to size.

        Ends ``success`` with ``target.target_vm`` set, or ``error`` with the reason (the target untouched).
        """
        if self.state is not MigrationState.RUNNING:
            self.start()
        elif not self.system_volume_selected:  # resumed from storage: the rule still holds
            self.fail("The system volume C:\\ must be selected.")
            raise SystemVolumeRequired(self.error)
        if not self.progress:
            self.progress = [VolumeProgress(m.name, m.size) for m in self.selected]
        tick = max(tick, 0.01)
        try:
            total = sum(v.size for v in self.progress)
            for volume in self.progress:
                seconds = duration * volume.size / total if total else 0.0
                elapsed = 0.0
                while elapsed < seconds:
                    if should_stop and should_stop():
                        raise Cancelled("cancelled")
                    step = min(tick, seconds - elapsed)
                    sleep(step)
                    elapsed += step
                    volume.copied = round(volume.size * min(elapsed / seconds, 1.0), 3)
                    if on_progress:
                        on_progress(self.progress)
                volume.copied = float(volume.size)
                if on_progress:
                    on_progress(self.progress)
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            self.target.target_vm = self.preview()
            self.state = MigrationState.SUCCESS
        except Cancelled:
            self.fail("cancelled")
        except Exception as exc:  # any failure of the copy ends the migration, never the caller
            self.fail(str(exc) or exc.__class__.__name__)

    def fail(self, reason: str) -> None:
        self.state, self.error = MigrationState.ERROR, reason

    @property
    def percent(self) -> float:
        total = sum(v.size for v in self.progress)
        return round(100.0 * sum(v.copied for v in self.progress) / total, 1) if total else 0.0
