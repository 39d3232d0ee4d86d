"""CPU-heavy work leaves the gevent loop free (checked in a gevent-patched subprocess)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import sys, time, gevent
    from wwhd.offload import cpu_bound

    def burn(seconds):
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n

    ticks = []
    def ticker():
        while True:
            ticks.append(time.perf_counter())
            gevent.sleep(0.01)

    def measure(run):
        ticks.clear()
        t = gevent.spawn(ticker)
        gevent.sleep(0.05)
        before = len(ticks)
        run()
        during = len(ticks) - before
        t.kill()
        return during

    offloaded = measure(lambda: cpu_bound(burn, 0.5))
    inline = measure(lambda: burn(0.5))
    print(offloaded, inline)
""")


def test_cpu_bound_work_does_not_stall_other_greenlets():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, cwd="."
    )
    assert out.returncode == 0, out.stderr
    offloaded, inline = (int(x) for x in out.stdout.split())
    assert inline <= 1  # the loop was stalled for the whole half second
    assert offloaded >= 10  # other greenlets kept running (ideal: ~50 ticks)


def test_plain_call_without_gevent():
    from wwhd.offload import cpu_bound

    assert cpu_bound(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
