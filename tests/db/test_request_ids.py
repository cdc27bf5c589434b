"""Request ids are UUIDv7: valid, unique, and ordered by time (cheap appends to the primary-key index)."""

from __future__ import annotations

import os
import time
import uuid

from llm_console.db.records import new_request_id


def test_ids_are_uuid_version_7_with_the_rfc_variant() -> None:
    value = uuid.UUID(new_request_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_carry_the_current_millisecond_and_sort_by_time() -> None:
    before = time.time_ns() // 1_000_000
    first = new_request_id()
    time.sleep(0.003)
    second = new_request_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(first).int >> 80 <= after
    assert first < second  # string order is time order (hex digits, fixed width)


def test_ids_are_unique_in_volume() -> None:
    ids = [new_request_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_repeat_the_parent_sequence() -> None:
    new_request_id()  # the parent's generator is seeded
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next ids and leave at once
        os.write(write, "".join(new_request_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 10_000).decode()
    os.waitpid(pid, 0)
    parent = "".join(new_request_id() for _ in range(20))
    child_ids = {child[i : i + 36] for i in range(0, len(child), 36)}
    parent_ids = {parent[i : i + 36] for i in range(0, len(parent), 36)}
    assert len(child_ids) == 20 and not child_ids & parent_ids
