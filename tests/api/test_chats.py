"""History routes: list, read, rename, delete — and nobody else's chats."""

from __future__ import annotations


def ask(client, headers, content="What does Herman say about clutter by the front door?"):
    reply = client.post("/api/v1/chat", json={"content": content}, headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["chat_id"]


def test_list_paginates_newest_first(samples, client, auth):
    headers = auth.headers()
    ids = [ask(client, headers, f"question number {n} about saving money") for n in range(3)]
    page1 = client.get("/api/v1/chats?per_page=2", headers=headers).get_json()
    assert page1["total"] == 3 and len(page1["items"]) == 2
    page2 = client.get("/api/v1/chats?per_page=2&page=2", headers=headers).get_json()
    listed = [c["id"] for c in page1["items"] + page2["items"]]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == 3
    assert page1["items"][0]["message_count"] == 2


def test_read_rename_delete(samples, client, auth):
    headers = auth.headers()
    chat_id = ask(client, headers)
    detail = client.get(f"/api/v1/chats/{chat_id}", headers=headers).get_json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["citations"]
    renamed = client.patch(
        f"/api/v1/chats/{chat_id}", json={"title": "Front door"}, headers=headers
    )
    assert renamed.status_code == 200 and renamed.get_json()["title"] == "Front door"
    assert (
        client.patch(f"/api/v1/chats/{chat_id}", json={"title": ""}, headers=headers).status_code
        == 422
    )
    assert client.delete(f"/api/v1/chats/{chat_id}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/chats/{chat_id}", headers=headers).status_code == 404


def test_other_users_chats_are_not_found(samples, client, auth):
    owner, intruder = auth.headers(), auth.headers()
    chat_id = ask(client, owner)
    for method in ("get", "patch", "delete"):
        reply = getattr(client, method)(
            f"/api/v1/chats/{chat_id}", json={"title": "x"}, headers=intruder
        )
        assert reply.status_code == 404, method
    continued = client.post(
        "/api/v1/chat", json={"content": "more", "chat_id": chat_id}, headers=intruder
    )
    assert continued.status_code == 404
    assert client.get("/api/v1/chats", headers=intruder).get_json()["total"] == 0
    assert client.get(f"/api/v1/chats/{chat_id}", headers=owner).status_code == 200


def test_bad_pagination_is_422(client, auth):
    headers = auth.headers()
    assert client.get("/api/v1/chats?page=zero", headers=headers).status_code == 422
    assert client.get("/api/v1/chats?per_page=1000", headers=headers).status_code == 422


def test_history_needs_a_token(client):
    reply = client.get("/api/v1/chats")
    assert reply.status_code == 401 and reply.get_json()["error"]["code"] == "UNAUTHORIZED"


def test_list_counts_only_the_users_own_messages(samples, client, auth, app):
    from sqlalchemy import event

    from wwhd.extensions import db

    owner, other = auth.headers(), auth.headers()
    mine = ask(client, owner)
    ask(client, owner, "What does Herman say about saving money?")
    client.post(
        "/api/v1/chat", json={"content": "And more on clutter?", "chat_id": mine}, headers=owner
    )
    for _ in range(2):
        ask(client, other)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        listed = client.get("/api/v1/chats", headers=owner).get_json()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    counts = {c["id"]: c["message_count"] for c in listed["items"]}
    assert listed["total"] == 2 and counts[mine] == 4 and sorted(counts.values()) == [2, 4]
    # The per-chat message count reads this user's chats only, not every message in the table.
    counting = [s for s in statements if "count(messages.id)" in s.lower()]
    assert counting and all(
        "user_id" in s.split("GROUP BY")[0].split("FROM messages")[1] for s in counting
    ), counting
