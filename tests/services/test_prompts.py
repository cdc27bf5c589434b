"""Prompt management: versions numbered 1, 2, 3 per prompt, immutable, refused when nothing changed; labels
moved with an audit event holding the versions before and after; members write, "production" needs operator."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llm_console.db.models import AuditEvent
from llm_console.db.prompt_tables import PromptVersion
from llm_console.services.prompts import (
    PromptAdminError,
    PromptPermissionError,
    add_version,
    create_prompt,
    get_prompt,
    list_prompts,
    remove_label,
    set_label,
)

GREETING = [{"role": "system", "content": "You help {{ team }}."}, {"role": "user", "content": "Hi {{name}}"}]


def audits(engine: Engine) -> list[tuple[str, str, Any, Any]]:
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.target_type == "prompt").order_by(col(AuditEvent.id)))
        return [(e.action, e.target_id, e.before, e.after) for e in rows]


def make(engine: Engine, name: str = "greet", role: str = "member", **kwargs: Any) -> Any:
    fields: dict[str, Any] = {"kind": "chat", "messages": GREETING, **kwargs}
    return create_prompt(engine, role=role, actor=f"{role}@x", name=name, **fields)


def test_create_stores_version_one_with_its_variables_labels_and_an_audit_event(engine: Engine) -> None:
    v1 = make(engine, config={"model": "m", "temperature": 0.2}, commit_message=" first ", labels=["staging"])
    assert (v1.name, v1.version, v1.kind, v1.text, v1.commit_message) == ("greet", 1, "chat", None, "first")
    assert v1.messages == GREETING and v1.variables == ["team", "name"]
    assert v1.config == {"model": "m", "temperature": 0.2} and len(v1.digest) == 64
    assert v1.labels == ["latest", "staging"] and v1.created_by == "member@x"
    assert audits(engine) == [
        (
            "prompt.create",
            "greet",
            None,
            {"name": "greet", "kind": "chat", "version": 1, "digest": v1.digest, "labels": ["staging"]},
        ),
        ("prompt.label.set", "greet", None, {"name": "greet", "label": "staging", "version": 1}),
    ]
    text = make(engine, "summaries/short", kind="text", messages=None, text="Summarise: {{ doc }}")
    assert (text.kind, text.messages, text.text, text.variables) == ("text", None, "Summarise: {{ doc }}", ["doc"])


@pytest.mark.parametrize(
    ("fields", "message", "param"),
    [
        ({"name": "-bad"}, "A prompt name has 1 to 200 letters", "name"),
        ({"kind": "image"}, "A prompt is 'chat' (a list of messages) or 'text'", "kind"),
        ({"messages": []}, "A chat prompt needs at least one message.", "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "Message 1: the role is one of", "messages"),
        ({"config": {"temperature": "hot"}}, "The model setting 'temperature' has the wrong type.", "config"),
        ({"config": {"api_key": "sk"}}, "Unknown model setting 'api_key'", "config"),
        ({"labels": ["latest"]}, "'latest' always means the newest version", "label"),
        ({"labels": ["Prod!"]}, "A label has 1 to 50 lower-case letters", "label"),
        ({"description": "d" * 1001}, "The description has at most 1000 characters.", "description"),
        ({"commit_message": "c" * 501}, "The commit message has at most 500 characters.", "commit_message"),
    ],
)
def test_bad_input_is_refused_readably_and_writes_nothing(
    engine: Engine, fields: dict[str, Any], message: str, param: str
) -> None:
    with pytest.raises(PromptAdminError) as err:
        make(engine, **fields)
    assert err.value.message.startswith(message) and err.value.param == param
    assert list_prompts(engine) == ([], 0) and audits(engine) == []


def test_roles_members_write_and_only_operators_touch_production(engine: Engine) -> None:
    for role in ("viewer", "nobody"):
        with pytest.raises(PromptPermissionError, match="Only members, operators and admins"):
            make(engine, role=role)
    with pytest.raises(PromptPermissionError, match="Only operators and admins can set, move or remove"):
        make(engine, labels=["production"])
    make(engine, labels=["staging"])
    with pytest.raises(PromptPermissionError, match="'production'"):
        add_version(engine, role="member", actor="m", name="greet", messages=GREETING[1:], labels=["production"])
    with pytest.raises(PromptPermissionError):
        set_label(engine, role="member", actor="m", name="greet", label="production", version=1)
    set_label(engine, role="operator", actor="op", name="greet", label="production", version=1)
    with pytest.raises(PromptPermissionError):
        remove_label(engine, role="member", actor="m", name="greet", label="production")
    with pytest.raises(PromptPermissionError):
        set_label(engine, role="viewer", actor="v", name="greet", label="staging", version=1)
    remove_label(engine, role="member", actor="m", name="greet", label="staging")  # any other label: members
    summary, _ = get_prompt(engine, "greet")
    assert summary.labels == {"production": 1}
    assert len(list_prompts(engine)[0]) == 1  # the refused calls left no second prompt or version
    with Session(engine) as s:
        assert len(s.exec(select(PromptVersion)).all()) == 1


def test_versions_count_up_and_an_identical_version_is_refused(engine: Engine) -> None:
    make(engine)
    with pytest.raises(PromptAdminError, match=r"Nothing changed: this is the same as version 1\."):
        add_version(engine, role="member", actor="m", name="greet", messages=GREETING)
    v2 = add_version(engine, role="member", actor="m", name="greet", messages=GREETING, config={"seed": 1})
    v3 = add_version(engine, role="admin", actor="a", name="greet", messages=GREETING, labels=["staging"])
    assert (v2.version, v3.version, v3.labels) == (2, 3, ["latest", "staging"])
    assert v3.digest == make(engine, "other").digest  # same content, same digest, whatever the prompt
    with pytest.raises(PromptAdminError, match="No prompt is named 'nope'"):
        add_version(engine, role="member", actor="m", name="nope", messages=GREETING)
    with pytest.raises(PromptAdminError, match="A chat prompt needs at least one message"):
        add_version(engine, role="member", actor="m", name="greet", text="a chat prompt takes messages")
    with pytest.raises(PromptAdminError, match="A prompt named 'greet' already exists"):
        make(engine)
    _, versions = get_prompt(engine, "greet")
    assert [(v.version, v.labels, v.config) for v in versions] == [
        (3, ["latest", "staging"], {}),
        (2, [], {"seed": 1}),
        (1, [], {}),
    ]


def test_label_moves_are_audited_with_the_versions_before_and_after(engine: Engine) -> None:
    make(engine)
    add_version(engine, role="member", actor="m", name="greet", messages=GREETING[1:])
    set_label(engine, role="operator", actor="op", name="greet", label="production", version=1)
    set_label(engine, role="operator", actor="op", name="greet", label="production", version=2)
    set_label(engine, role="operator", actor="op", name="greet", label="production", version=2)  # no change
    remove_label(engine, role="operator", actor="op", name="greet", label="production")
    label_events = [a for a in audits(engine) if a[0].startswith("prompt.label")]
    assert label_events == [
        ("prompt.label.set", "greet", None, {"name": "greet", "label": "production", "version": 1}),
        (
            "prompt.label.move",
            "greet",
            {"name": "greet", "label": "production", "version": 1},
            {"name": "greet", "label": "production", "version": 2},
        ),
        ("prompt.label.remove", "greet", {"name": "greet", "label": "production", "version": 2}, None),
    ]
    with pytest.raises(PromptAdminError, match=r"The prompt 'greet' has no version 9\."):
        set_label(engine, role="member", actor="m", name="greet", label="staging", version=9)
    with pytest.raises(PromptAdminError, match="has no label 'staging'"):
        remove_label(engine, role="member", actor="m", name="greet", label="staging")
    with pytest.raises(PromptAdminError, match="'latest' always means the newest version"):
        set_label(engine, role="admin", actor="a", name="greet", label="latest", version=1)


def test_list_pages_searches_literally_and_summarises_each_prompt(engine: Engine) -> None:
    for name in ("a_b", "axb", "c.d", "zeta"):
        make(engine, name)
    add_version(engine, role="member", actor="m", name="zeta", messages=GREETING[:1], labels=["staging"])
    set_label(engine, role="operator", actor="op", name="zeta", label="production", version=1)
    page, total = list_prompts(engine, page=1, page_size=3)
    assert ([p.name for p in page], total) == (["a_b", "axb", "c.d"], 4)
    page, total = list_prompts(engine, page=2, page_size=3)
    assert [(p.name, p.latest_version, p.versions, p.labels) for p in page] == [
        ("zeta", 2, 2, {"production": 1, "staging": 2})
    ]
    assert total == 4
    summary, versions = get_prompt(engine, "zeta")
    assert summary.updated_at >= versions[0].created_at  # the label moved after version 2 was written
    assert [p.name for p in list_prompts(engine, search="_")[0]] == ["a_b"]  # not "any one character"
    assert list_prompts(engine, search="%") == ([], 0)  # not "anything"
    assert [p.name for p in list_prompts(engine, search="A")[0]] == ["a_b", "axb", "zeta"]
    assert list_prompts(engine, search="\x00") == ([], 0)


def test_concurrent_versions_get_distinct_consecutive_numbers(engine: Engine) -> None:
    make(engine)
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def add(i: int) -> None:
        start.wait()
        try:
            message = [{"role": "user", "content": f"variant {i}"}]
            results.append(add_version(engine, role="member", actor=f"w{i}", name="greet", messages=message).version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [2, 3, 4, 5, 6, 7]
    _, versions = get_prompt(engine, "greet")
    assert [v.version for v in versions] == [7, 6, 5, 4, 3, 2, 1]
