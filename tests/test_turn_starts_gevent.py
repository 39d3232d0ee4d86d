"""A request that starts a chat turn gives the gevent loop away once before it does any work, so
the requests that arrived with it are not queued behind its whole start (checked in a
gevent-patched subprocess, as gunicorn's worker runs)."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import json, sys, tempfile
    import gevent, greenlet
    from wwhd import create_app

    tmp = tempfile.mkdtemp()
    app = create_app({
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp}/test.db",
        "QDRANT_PATH": ":memory:",
        "QDRANT_URL": "",
        "OPENAI_API_KEY": "",
        "REDIS_URL": "",
        "UPLOAD_DIR": f"{tmp}/uploads",
        "UPLOADS_BUCKET_NAME": "",
        "JWT_SECRET": "test-secret-that-is-long-enough-0123456789",
    })
    client = app.test_client()
    WATCHED = ("flask_limiter", "limits", "flask_jwt_extended", "jwt", "sqlalchemy")

    def before_first_switch(method, path):
        # The watched packages the request called before it first gave the loop away.
        seen, switched, request_greenlet = set(), [], []

        def profile(frame, event, arg):
            if event == "call" and not switched and gevent.getcurrent() in request_greenlet:
                seen.add(str(frame.f_globals.get("__name__", "")).split(".")[0])

        def trace(event, args):
            if args[0] in request_greenlet:
                switched.append(1)

        def ask():
            request_greenlet.append(gevent.getcurrent())
            client.open(path, method=method, json={"message": "hi"})

        greenlet.settrace(trace)
        sys.setprofile(profile)
        try:
            gevent.spawn(ask).join()
        finally:
            sys.setprofile(None)
            greenlet.settrace(None)
        return {"switched": bool(switched), "called": sorted(seen.intersection(WATCHED))}

    print(json.dumps({
        "stream": before_first_switch("POST", "/api/v1/chat/stream"),
        "json": before_first_switch("POST", "/api/v1/chat"),
        "chats": before_first_switch("GET", "/api/v1/chats"),
    }))
""")


def test_turn_starts_give_the_loop_away_before_any_work():
    """On the old code a chat request first gave the loop away inside the rate limiter (its
    memory storage's timer check), after the limiter had decoded the JWT for its key: 200 chats
    arriving together each ran that much before anything that came with them. Now the first
    switch comes before the limiter, auth and the database. The chat list (not a turn start) is
    the control: it reaches the limiter before any switch, so the check can see it."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, cwd="."
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("stream", "json"):
        assert seen[name] == {"switched": True, "called": []}, name
    assert "flask_limiter" in seen["chats"]["called"]
