"""Rate limits per role, per IP and on sign-in; daily token quotas; Redis-shared counters."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.conftest import Auth, close_app, make_app
from wwhd.extensions import db
from wwhd.models import Chat, Message

REDIS_URL = os.environ.get("WWHD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def build(tmp_path):
    """make_app with overrides; every app built is disposed at the end."""
    apps = []

    def _build(name: str = "app", **overrides):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        app = make_app(folder, **overrides)
        apps.append(app)
        return app

    yield _build
    for app in apps:
        close_app(app)


def assert_rate_limited(reply, limit: int):
    assert reply.status_code == 429, reply.get_json()
    body = reply.get_json()
    assert body["error"]["code"] == "RATE_LIMITED"
    assert body["detail"]
    assert 0 < int(reply.headers["Retry-After"]) <= 60
    assert reply.headers["X-RateLimit-Limit"] == str(limit)
    assert reply.headers["X-RateLimit-Remaining"] == "0"
    assert int(reply.headers["X-RateLimit-Reset"]) > 0


def test_anonymous_limit_is_per_ip_with_headers(build):
    app = build(RATE_LIMIT_ANON="3/minute")
    client = app.test_client()
    remaining = []
    for _ in range(3):
        reply = client.get("/api/v1/chats")
        assert reply.status_code == 401  # counted, then refused by auth
        assert reply.headers["X-RateLimit-Limit"] == "3"
        assert "Retry-After" not in reply.headers  # only a 429 tells the client to wait
        remaining.append(int(reply.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    assert_rate_limited(client.get("/api/v1/chats"), 3)
    # Another address has its own bucket.
    other = client.get("/api/v1/chats", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 401
    assert other.headers["X-RateLimit-Remaining"] == "2"
    # Liveness checks are never limited (the ALB polls them).
    assert client.get("/health").status_code == 200


def test_unknown_urls_count_too(build):
    client = build(RATE_LIMIT_ANON="2/minute").test_client()
    assert client.get("/wp-admin.php").status_code == 404
    assert client.get("/.env").status_code == 404
    assert_rate_limited(client.get("/admin/config"), 2)


def test_users_are_limited_per_user_and_admins_get_more(build):
    app = build(RATE_LIMIT_USER="3/minute", RATE_LIMIT_ADMIN="5/minute")
    client = app.test_client()
    auth = Auth(app, client)
    first, second, admin = auth.headers("user"), auth.headers("user"), auth.headers("admin")
    for _ in range(3):
        assert client.get("/api/v1/chats", headers=first).status_code == 200
    assert_rate_limited(client.get("/api/v1/chats", headers=first), 3)
    # Same IP, different user: a separate bucket, so one chatty user does not block an office.
    reply = client.get("/api/v1/chats", headers=second)
    assert reply.status_code == 200 and reply.headers["X-RateLimit-Limit"] == "3"
    for _ in range(5):
        assert client.get("/api/v1/chats", headers=admin).status_code == 200
    assert_rate_limited(client.get("/api/v1/chats", headers=admin), 5)


def test_a_forged_token_is_limited_as_anonymous(build):
    app = build(RATE_LIMIT_ANON="2/minute", RATE_LIMIT_ADMIN="1000/minute")
    client = app.test_client()
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwicm9sZSI6ImFkbWluIn0."}
    assert client.get("/api/v1/chats", headers=forged).status_code == 401
    assert client.get("/api/v1/chats", headers=forged).status_code == 401
    assert_rate_limited(client.get("/api/v1/chats", headers=forged), 2)


def test_brute_force_login_hits_429_but_other_routes_keep_working(build):
    app = build(RATE_LIMIT_LOGIN="3/minute")
    client = app.test_client()
    user = Auth(app, client).create("user")
    wrong = {"email": user["email"], "password": "not-the-password"}
    assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": user["email"], "password": "nope-nope"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/api/v1/auth/register", json={"email": "x@example.com", "password": "short"}
        ).status_code
        == 422
    )
    # The fourth attempt from this address is refused, even with the right password.
    assert_rate_limited(
        client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
        ),
        3,
    )
    assert client.get("/health").status_code == 200
    assert (
        client.get("/api/v1/chats").status_code == 401
    )  # not 429: the stricter bucket is for sign-in only
    # A different client address can still sign in.
    reply = client.post(
        "/api/v1/auth/login",
        json={"email": user["email"], "password": user["password"]},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert reply.status_code == 200


def test_forwarded_for_is_only_trusted_behind_a_proxy(build):
    spoofable = build("direct", RATE_LIMIT_ANON="1/minute").test_client()
    assert spoofable.get("/api/v1/chats", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 401
    # Without trusted proxies a client cannot mint fresh buckets by inventing X-Forwarded-For.
    assert spoofable.get("/api/v1/chats", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429

    behind_alb = build("alb", RATE_LIMIT_ANON="1/minute", TRUSTED_PROXY_HOPS=1).test_client()
    # The ALB appends the real client address; only that last hop is believed.
    assert (
        behind_alb.get("/api/v1/chats", headers={"X-Forwarded-For": "9.9.9.9, 1.1.1.1"}).status_code
        == 401
    )
    assert (
        behind_alb.get("/api/v1/chats", headers={"X-Forwarded-For": "8.8.8.8, 1.1.1.1"}).status_code
        == 429
    )
    assert (
        behind_alb.get("/api/v1/chats", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 401
    )


def _use_tokens(app, user_id: int, tokens: int):
    from wwhd import usage

    with app.app_context():
        usage.record(
            user_id, None, {"model": "gpt-4o-mini", "prompt_tokens": tokens, "completion_tokens": 0}
        )
        db.session.commit()


def test_daily_token_quota_refuses_a_turn_and_saves_nothing(build):
    app = build(DAILY_TOKENS_USER=1000)
    client = app.test_client()
    auth = Auth(app, client)
    user = auth.create("user")
    headers = {"Authorization": f"Bearer {auth.login(user)['access_token']}"}
    _use_tokens(app, user["id"], 999)
    assert (
        client.post(
            "/api/v1/chat", json={"content": "How do I save money?"}, headers=headers
        ).status_code
        == 200
    )
    _use_tokens(app, user["id"], 1)
    for path in ("/api/v1/chat", "/api/v1/chat/stream"):
        reply = client.post(path, json={"content": "And how do I budget?"}, headers=headers)
        assert reply.status_code == 429, reply.get_data(as_text=True)
        body = reply.get_json()
        assert body["error"]["code"] == "QUOTA_EXCEEDED"
        assert body["quota"]["limit"] == 1000 and body["quota"]["used"] >= 1000
        assert 0 < int(reply.headers["Retry-After"]) <= 86400
    with app.app_context():
        assert db.session.query(Message).count() == 2  # only the first, allowed turn
        assert db.session.query(Chat).count() == 1
    # Admins have their own, larger quota.
    admin = auth.create("admin")
    _use_tokens(app, admin["id"], 1000)
    admin_headers = {"Authorization": f"Bearer {auth.login(admin)['access_token']}"}
    assert (
        client.post("/api/v1/chat", json={"content": "money"}, headers=admin_headers).status_code
        == 200
    )


def test_redis_outage_does_not_break_requests(build):
    # Nothing listens on port 1: the limiter falls back to per-process memory instead of failing.
    app = build(REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_ANON="2/minute")
    client = app.test_client()
    assert client.get("/api/v1/chats").status_code == 401
    assert client.get("/api/v1/chats").status_code == 401
    assert client.get("/api/v1/chats").status_code == 429


@pytest.fixture
def redis_url():
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        if os.environ.get("WWHD_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (WWHD_REQUIRE_REDIS=1) but {REDIS_URL} is unreachable")
        pytest.skip("Redis not reachable")
    return REDIS_URL


def test_limits_hold_across_two_app_instances_sharing_redis(build, redis_url):
    import redis

    prefix = f"wwhd-test-{uuid.uuid4().hex}"
    settings = {
        "REDIS_URL": redis_url,
        "RATE_LIMIT_KEY_PREFIX": prefix,
        "RATE_LIMIT_ANON": "3/minute",
    }
    one, two = build("one", **settings).test_client(), build("two", **settings).test_client()
    try:
        assert one.get("/api/v1/chats").status_code == 401
        assert two.get("/api/v1/chats").status_code == 401
        reply = one.get("/api/v1/chats")
        assert reply.status_code == 401 and reply.headers["X-RateLimit-Remaining"] == "0"
        # The third request went to the other instance, yet this one knows the bucket is empty.
        assert_rate_limited(two.get("/api/v1/chats"), 3)
        assert_rate_limited(one.get("/api/v1/chats"), 3)
        keys = redis.Redis.from_url(redis_url).keys(f"*{prefix}*")
        assert keys, "counters should live in Redis under the configured prefix"
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
