"""The in-memory stream store under gevent (a gevent-patched subprocess, as gunicorn's worker):
writing an event wakes the readers without giving the loop away."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import gevent, greenlet
    from wwhd.streams import MemoryStreams

    store = MemoryStreams(ttl=60)
    store.create("turn")
    got = []
    reader = gevent.spawn(lambda: got.append(store.read("turn", 0, 5)))
    gevent.sleep(0)  # the reader waits for the first event

    yields = []
    def writer():
        me = gevent.getcurrent()
        greenlet.settrace(lambda event, args: yields.append(1) if args[0] is me else None)
        try:
            for n in range(1, 51):
                store.append("turn", n, [("token", '{"content":"x"}')])
        finally:
            greenlet.settrace(None)
    w = gevent.spawn(writer)
    w.join()
    yields_while_writing = len(yields)
    reader.join()
    print(yields_while_writing, len(got[0]))
""")


def test_appending_events_never_yields_the_loop():
    """gevent sleeps on a failed non-blocking acquire, which Condition._is_owned does on notify
    with a plain Lock: every event a worker wrote sent it to the back of the loop's queue (a trip
    behind every other ready greenlet, 50 per 50-token answer)."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, cwd="."
    )
    assert out.returncode == 0, out.stderr
    yields, read = (int(x) for x in out.stdout.split())
    assert yields == 0
    assert read >= 1  # the waiting reader was woken and read what had been written
