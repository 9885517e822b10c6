"""Requests that miss the same cached response at once: one builds it, the others wait for it on the event
loop and answer from the cache; when the build files nothing, each builds its own."""

from __future__ import annotations

import asyncio

from tickets.response_cache import ResponseCaches


def test_one_request_builds_what_many_miss_at_once_and_the_others_answer_from_the_cache() -> None:
    caches = ResponseCaches()
    builds: list[int] = []

    async def lead() -> str:
        builds.append(1)
        await asyncio.sleep(0.05)  # the general path in its worker thread
        caches.get("page").put("key", 7, "built at 7")
        return "built at 7"

    async def many() -> list[str]:
        asks = [caches.answer("page", "key", 7, lead, hit=lambda value: f"hit: {value}") for _ in range(20)]
        return await asyncio.gather(*asks)

    answers = asyncio.run(many())
    assert len(builds) == 1, "one build for twenty requests"
    assert answers[0] == "built at 7" and set(answers[1:]) == {"hit: built at 7"}
    # a newer version is a miss again
    assert asyncio.run(caches.answer("page", "key", 8, lead, hit=str)) == "built at 7" and len(builds) == 2


def test_when_the_build_files_nothing_each_waiting_request_builds_its_own() -> None:
    caches = ResponseCaches()
    builds: list[int] = []

    async def lead() -> str:  # a page with a flash message, or a newer version read: nothing filed
        builds.append(1)
        await asyncio.sleep(0.02)
        return "not filed"

    async def many() -> list[str]:
        return await asyncio.gather(*(caches.answer("page", "key", 3, lead, hit=str) for _ in range(5)))

    assert asyncio.run(many()) == ["not filed"] * 5
    assert len(builds) == 5


def test_a_hit_the_caller_refuses_is_built_again_and_with_the_caches_off_nothing_waits() -> None:
    caches = ResponseCaches()
    caches.get("page").put("key", 1, "expired")
    rebuilt = asyncio.run(
        caches.answer(
            "page", "key", 1, lambda: _value("rebuilt"), hit=lambda v: None if v == "expired" else v
        )
    )
    assert rebuilt == "rebuilt"
    off = ResponseCaches(enabled=False)
    off.get("page").put("key", 1, "never kept")
    assert asyncio.run(off.answer("page", "key", 1, lambda: _value("built"), hit=str)) == "built"


async def _value(value: str) -> str:
    return value
