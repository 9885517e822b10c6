"""Response caches of the ticket queue: values filed under the version they were read at (tickets/cache.py
says what moves the versions), and the request flights that let one request build what many miss at once."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from contextlib import suppress
from typing import Any, Generic, TypeVar

CACHE_SIZE = 512
"""Responses kept per cache (least recently used dropped first)."""
FLIGHT_WAIT_S = 10.0
"""How long a request waits for another building the same response before building it itself."""
V = TypeVar("V")


class VersionedCache(Generic[V]):
    """A small LRU of values each filed under the tickets version it was read at."""

    def __init__(self, size: int = CACHE_SIZE, *, enabled: bool = True) -> None:
        self.size = size
        self.enabled = enabled
        self._items: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()
        self._flights: dict[tuple[Hashable, int], threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: int | None) -> V | None:
        if version is None or not self.enabled:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != version:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[1]

    def put(self, key: Hashable, version: int | None, value: V) -> None:
        if version is None or not self.enabled:
            return
        with self._lock:
            current = self._items.get(key)
            if current is not None and current[0] > version:
                return  # a newer response is already filed
            self._items[key] = (version, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_build(self, key: Hashable, version: int | None, build: Callable[[], V]) -> V:
        """The value filed under ``(key, version)``, else ``build()``'s, filed. One build per key and
        version at a time: requests arriving while it runs wait for it rather than all building the same
        page after a change (each would cost the CPU of a full render)."""
        if version is None or not self.enabled:
            return build()
        while True:
            with self._lock:
                found = self._items.get(key)
                if found is not None and found[0] == version:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return found[1]
                flight = self._flights.get((key, version))
                mine = flight is None
                if flight is None:
                    flight = self._flights[(key, version)] = threading.Event()
                    self.misses += 1
            if not mine:
                flight.wait(FLIGHT_WAIT_S)
                continue  # filed by now; else (the build failed, or a newer one won) build it here
            try:
                value = build()
                self.put(key, version, value)
                return value
            finally:
                with self._lock:
                    self._flights.pop((key, version), None)
                flight.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Flights:
    """Requests on the event loop that miss the same cached response at the same version: the first
    builds it (in a worker thread, through the general path); the others wait for it without taking a
    thread each, then answer from the cache. Without this, a write sends every request in flight for a
    busy page through the general path at once (its user lookup, its version read, a thread each),
    where all but one then wait for the same build anyway."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Event] = {}

    async def run(self, key: Hashable, lead: Callable[[], Awaitable[V]], follow: Callable[[], V | None]) -> V:
        """``lead()`` for the first request of ``key``; one arriving while it runs waits for it, then
        answers ``follow()`` (the response it filed), or leads itself when there is none (the build
        filed nothing at this version: a flash message, a newer version, a failure)."""
        flight = (id(asyncio.get_running_loop()), key)  # an app may serve more than one loop (tests)
        running = self._running.get(flight)
        if running is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(running.wait(), FLIGHT_WAIT_S)
            found = follow()
            return found if found is not None else await lead()
        done = self._running[flight] = asyncio.Event()
        try:
            return await lead()
        finally:
            if self._running.get(flight) is done:
                del self._running[flight]
            done.set()


class ResponseCaches:
    """One app's response caches by name, made on first use; all off when ``enabled`` is false (the
    ``server.response_cache`` setting: to measure without them, bench/queue_load.py ``--uncached``)."""

    def __init__(self, *, enabled: bool = True, size: int = CACHE_SIZE) -> None:
        self.enabled = enabled
        self.size = size
        self._caches: dict[str, VersionedCache[Any]] = {}
        self._lock = threading.Lock()
        self.flights = Flights()

    async def answer(
        self,
        name: str,
        key: Hashable,
        version: int | None,
        lead: Callable[[], Awaitable[V]],
        hit: Callable[[Any], V | None],
    ) -> V:
        """On the event loop: ``hit(value)`` for the value filed under ``(key, version)`` in cache
        ``name`` (None: it may not be served, as a miss); else ``lead()`` (the general path), once for
        all the requests that miss it at once."""
        cache = self.get(name)

        def follow() -> V | None:
            value = cache.get(key, version)
            return None if value is None else hit(value)

        found = follow()
        if found is not None:
            return found
        if version is None or not self.enabled:
            return await lead()
        return await self.flights.run((name, key, version), lead, follow)

    def get(self, name: str) -> VersionedCache[Any]:
        with self._lock:
            cache = self._caches.get(name)
            if cache is None:
                cache = self._caches[name] = VersionedCache(self.size, enabled=self.enabled)
            return cache
