"""Workloads: the machines to migrate, their credentials and volumes.

Every class validates itself on construction and raises ``ValidationError`` with the paths of the
fields at fault, so the HTML forms and the JSON API share these rules instead of repeating them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable

from .errors import ImmutableFieldError, ValidationError

_DRIVE = re.compile(r"^([A-Za-z]):[\\/]?$")


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
