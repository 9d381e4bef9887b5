"""The exclusive lock of a test environment, in Redis: ``SET env-lock:<n> <token> NX PX <ttl>``.

Only the holder of the token can extend or release it (compare-and-set in Lua), so a run that lost its
lock can never free an environment that another run now holds.
"""
from __future__ import annotations

from redis import Redis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# 1: extended; 2: the key was gone (e.g. Redis restarted) and the holder took it back; 0: someone else holds it.
_EXTEND = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""


class EnvironmentLock:
    def __init__(self, connection: Redis, environment_id: int, ttl_ms: int):
        self.connection, self.key, self.ttl_ms = connection, f"env-lock:{environment_id}", ttl_ms
        self._release = connection.register_script(_RELEASE)
        self._extend = connection.register_script(_EXTEND)

    def acquire(self, token: str) -> bool:
        return bool(self.connection.set(self.key, token, nx=True, px=self.ttl_ms))

    def extend(self, token: str) -> bool:
        """Keep holding the lock (or take it back if Redis lost it); False when another token holds it."""
        return bool(self._extend(keys=[self.key], args=[token, self.ttl_ms]))

    def release(self, token: str) -> bool:
        return bool(self._release(keys=[self.key], args=[token]))

    def holder(self) -> str | None:
        value = self.connection.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def force_release(self) -> None:
        self.connection.delete(self.key)
