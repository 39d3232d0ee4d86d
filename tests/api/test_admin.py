"""Admin views: stats, unanswered questions, feedback summary, user management."""

from __future__ import annotations

import pytest

from wwhd.conversations import record_unanswered
from wwhd.extensions import db

COVERED = "How do my wife and I stop fighting about money?"
NOT_COVERED = "Explain how quantum computers factor large numbers"


def ask(client, headers, content):
    reply = client.post("/api/v1/chat", json={"content": content}, headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/stats",
        "/api/v1/admin/unanswered",
        "/api/v1/admin/feedback",
        "/api/v1/admin/users",
    ],
)
def test_admin_only(client, auth, path):
    assert client.get(path).status_code == 401
    for role in ("viewer", "user"):
        reply = client.get(path, headers=auth.headers(role))
        assert reply.status_code == 403 and reply.get_json()["error"]["code"] == "FORBIDDEN"
    assert client.get(path, headers=auth.headers("admin")).status_code == 200


def test_unanswered_questions_are_recorded_counted_and_sorted(samples, client, auth):
    user, admin = auth.headers(), auth.headers("admin")
    for _ in range(3):
        assert ask(client, user, NOT_COVERED)["covered"] is False
    ask(
        client, user, "Explain how QUANTUM computers factor large numbers!"
    )  # same question, other spelling
    ask(client, user, "Which hotel in Lisbon is best for a city break?")
    ask(client, user, COVERED)  # answered: not recorded
    listing = client.get("/api/v1/admin/unanswered", headers=admin).get_json()
    assert listing["total"] == 2
    top, second = listing["items"]
    assert top["count"] == 4 and top["question"] == NOT_COVERED
    assert second["count"] == 1 and "Lisbon" in second["question"]
    assert {"namespace_guess", "first_seen", "last_seen", "id"} <= set(top)
    page2 = client.get("/api/v1/admin/unanswered?per_page=1&page=2", headers=admin).get_json()
    assert [item["id"] for item in page2["items"]] == [second["id"]] and page2["total"] == 2
    assert client.get("/api/v1/admin/unanswered?per_page=0", headers=admin).status_code == 422
    assert client.get("/api/v1/admin/unanswered?page=x", headers=admin).status_code == 422
    stats = client.get("/api/v1/admin/stats", headers=admin).get_json()
    assert stats["unanswered"]["questions"] == 2 and stats["unanswered"]["asks"] == 5
    assert stats["unanswered"]["top"][0]["question"] == NOT_COVERED


def test_unanswered_namespace_filter(app, client, auth):
    with app.app_context():
        record_unanswered("How do I invest in bonds?", "money")
        record_unanswered("How do I tile a kitchen floor?", "feng_shui")
        db.session.commit()
    admin = auth.headers("admin")
    money = client.get("/api/v1/admin/unanswered?namespace=money", headers=admin).get_json()
    assert [item["question"] for item in money["items"]] == ["How do I invest in bonds?"]


def test_stats_counts_users_documents_usage_and_feedback(samples, client, auth):
    user = auth.headers()
    auth.create("viewer")
    admin = auth.headers("admin")
    answer = ask(client, user, COVERED)
    client.post(
        f"/api/v1/messages/{answer['message_id']}/feedback", json={"rating": "up"}, headers=user
    )
    stats = client.get("/api/v1/admin/stats", headers=admin).get_json()
    assert stats["users"] == {
        "total": 3,
        "active": 3,
        "by_role": {"viewer": 1, "user": 1, "admin": 1},
    }
    assert stats["documents"]["by_status"]["indexed"] == 8 and stats["documents"]["total"] == 8
    assert stats["documents"]["chunks"] > 8
    assert stats["usage"]["today"]["messages"] >= 1 and stats["usage"]["total"]["cost_usd"] == 0
    assert stats["chats"] == {"chats": 1, "answers": 1}
    assert stats["feedback"] == {"up": 1, "down": 0}


def test_feedback_summary_counts_comments_and_worst_documents(samples, client, auth):
    alice, bob, admin = auth.headers(), auth.headers(), auth.headers("admin")
    mine = ask(client, alice, COVERED)
    chat = client.get(f"/api/v1/chats/{mine['chat_id']}", headers=alice).get_json()
    citations = chat["messages"][1]["citations"]
    bad_doc = citations[0]["document_id"]

    def rate(headers, message_id, **body):
        reply = client.post(f"/api/v1/messages/{message_id}/feedback", json=body, headers=headers)
        assert reply.status_code in (200, 201), reply.get_json()

    rate(alice, mine["message_id"], rating="down", comment="Too vague.")
    rate(
        alice,
        mine["message_id"],
        rating="down",
        citation_id=citations[0]["id"],
        comment="Wrong clip.",
    )
    theirs = ask(client, bob, "How do I do a horse stance?")
    rate(bob, theirs["message_id"], rating="up", comment="Clear, thanks!")
    summary = client.get("/api/v1/admin/feedback", headers=admin).get_json()
    assert summary["up"] == 1 and summary["down"] == 2
    assert summary["answers"] == {"up": 1, "down": 1} and summary["citations"] == {
        "up": 0,
        "down": 1,
    }
    assert [c["comment"] for c in summary["recent_comments"]] == [
        "Clear, thanks!",
        "Wrong clip.",
        "Too vague.",
    ]
    assert summary["recent_comments"][0]["username"].startswith("user")
    assert [d["document_id"] for d in summary["worst_documents"]] == [bad_doc]
    assert summary["worst_documents"][0]["down"] == 1 and summary["worst_documents"][0]["title"]
    limited = client.get("/api/v1/admin/feedback?recent=1", headers=admin).get_json()
    assert len(limited["recent_comments"]) == 1


def test_admin_manages_roles_and_access(client, auth):
    admin = auth.headers("admin")
    target = auth.create("user")
    token = auth.login(target)["access_token"]
    listing = client.get("/api/v1/admin/users?q=user", headers=admin).get_json()
    assert [u["id"] for u in listing["items"]] == [target["id"]]
    promoted = client.patch(
        f"/api/v1/admin/users/{target['id']}", json={"role": "admin"}, headers=admin
    )
    assert promoted.status_code == 200 and promoted.get_json()["role"] == "admin"
    # A role change ends the sessions issued under the old role; signing in again picks it up.
    stale = client.get("/api/v1/admin/stats", headers={"Authorization": f"Bearer {token}"})
    assert stale.status_code == 401
    token = auth.login(target)["access_token"]
    assert (
        client.get("/api/v1/admin/stats", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    disabled = client.patch(
        f"/api/v1/admin/users/{target['id']}", json={"is_active": False}, headers=admin
    )
    assert disabled.get_json()["is_active"] is False
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/api/v1/admin/users?role=admin", headers=admin).get_json()["total"] == 2


def test_user_updates_are_validated(client, auth):
    admin = auth.headers("admin")
    target = auth.create("user")
    url = f"/api/v1/admin/users/{target['id']}"
    for body in ({"role": "root"}, {"is_active": "no"}, {"email": "x@y.z"}, {}):
        reply = client.patch(url, json=body, headers=admin)
        assert reply.status_code == 422, body
    assert (
        client.patch("/api/v1/admin/users/999999", json={"role": "user"}, headers=admin).status_code
        == 404
    )
    assert (
        client.patch(url, json={"role": "admin"}, headers=auth.headers("user")).status_code == 403
    )
    assert client.get("/api/v1/admin/users?role=root", headers=admin).status_code == 422


def test_admin_cannot_lock_themselves_out(client, auth):
    me = auth.create("admin")
    headers = {"Authorization": f"Bearer {auth.login(me)['access_token']}"}
    for body in ({"role": "user"}, {"is_active": False}):
        reply = client.patch(f"/api/v1/admin/users/{me['id']}", json=body, headers=headers)
        assert reply.status_code == 409, body
    assert client.get("/api/v1/admin/stats", headers=headers).status_code == 200
