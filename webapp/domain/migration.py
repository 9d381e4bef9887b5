"""The migration of a workload to a cloud (the workloads themselves are in ``workloads``).

Every class validates itself on construction and raises ``ValidationError`` with the paths of the
fields at fault, so the HTML forms and the JSON API share these rules instead of repeating them.
"""
from __future__ import annotations

import copy
import enum
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import InvalidStateError, SystemVolumeRequired, ValidationError
from .workloads import Credentials, MountPoint, Workload, _collect, normalise_volume

SYSTEM_VOLUME = "C:\\"


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
    # ``{"test_files": [...], "environment_id": n}``: the test run that must pass on the target (None: none)
    validation: dict | None = None

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
