"""The index heals itself: a served app finds at start-up that Qdrant is behind SQL and repairs it."""

from __future__ import annotations

import json
import shutil

from tests.conftest import close_app
from wwhd import create_app
from wwhd.deps import get_deps, get_runner
from wwhd.extensions import db
from wwhd.knowledge import reconcile
from wwhd.knowledge.ingest import add_source
from wwhd.knowledge.namespaces import seed_namespaces

TALK_A = "\n\n".join(
    f"Part {n}: the morning walk clears the head before any decision is made." for n in range(40)
)
TALK_B = "\n\n".join(
    f"Part {n}: a persimmon orchard teaches patience, harvest comes in its own season."
    for n in range(40)
)


def config_for(tmp_path) -> dict:
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'heal.db'}",
        "QDRANT_PATH": str(tmp_path / "qdrant"),  # embedded Qdrant on disk, like `make dev`
        "QDRANT_URL": "",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
        "INDEX_CHECK_SECONDS": 0,
    }


def stop(app) -> None:
    """The process goes away: jobs stop, local mode releases the Qdrant folder."""
    close_app(app)
    get_deps(app).index.client.close()


def upload(config: dict, text: str, title: str) -> int:
    app = create_app(config)
    with app.app_context():
        db.create_all()
        seed_namespaces()
        db.session.commit()
        document_id = add_source("general", text=text, title=title).document.id
        db.session.commit()
    assert get_runner(app).run(document_id) == "indexed"
    stop(app)
    return document_id


def serve(config: dict):
    """create_app as gunicorn's worker does it; waits for the start-up sweep to finish."""
    app = create_app({**config, "JOBS_AUTOSTART": True})
    runner = get_runner(app)
    assert runner.startup is not None, "create_app did not start the runner"
    runner.startup.result(timeout=120)
    return app, runner


def found_documents(app, query: str) -> set[int]:
    """Documents whose words the query matches (BM25): dense search always returns the nearest
    chunks, so it cannot show that a document is missing."""
    with app.app_context():
        result = get_deps(app).index.search(query, None, 10)
    return {hit.payload["document_id"] for hit in result.hits if hit.chunk_id in result.sparse}


def metric_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if '"IndexDrift"' in line]


def test_restored_older_index_is_healed_at_start(tmp_path, capsys, caplog):
    config = config_for(tmp_path)
    first = upload(config, TALK_A, "Morning walk")
    snapshot = tmp_path / "qdrant-snapshot"
    shutil.copytree(tmp_path / "qdrant", snapshot)  # what a Qdrant snapshot holds
    second = upload(config, TALK_B, "Persimmon orchard")
    # Qdrant's task is replaced and restores the older snapshot: the newer upload is gone.
    shutil.rmtree(tmp_path / "qdrant")
    shutil.copytree(snapshot, tmp_path / "qdrant")

    app, runner = serve(config)
    try:
        assert runner.last_health is not None and runner.last_health.behind == [second]
        assert found_documents(app, "persimmon orchard harvest") == {second}
        assert first in found_documents(app, "morning walk decision")
        with app.app_context():
            assert reconcile.report(get_deps(app).index).total == 0
        logged = [r.getMessage() for r in caplog.records if r.name == "wwhd.knowledge.reconcile"]
        assert "index behind SQL: repairing in the background" in logged
        assert [m["IndexDrift"] for m in metric_lines(capsys.readouterr().out)] == [1]
        # The next check finds nothing to do and says so with a zero.
        assert runner.heal().drifted is False
        assert [m["IndexDrift"] for m in metric_lines(capsys.readouterr().out)] == [0]
    finally:
        stop(app)


def test_lost_index_is_rebuilt_at_start(tmp_path):
    config = config_for(tmp_path)
    first = upload(config, TALK_A, "Morning walk")
    second = upload(config, TALK_B, "Persimmon orchard")
    shutil.rmtree(tmp_path / "qdrant")  # the volume is gone

    app, runner = serve(config)
    try:
        assert runner.last_health.behind == [first, second]
        assert found_documents(app, "persimmon orchard harvest") == {second}
        assert first in found_documents(app, "morning walk decision")
        with app.app_context():
            assert reconcile.report(get_deps(app).index).total == 0
    finally:
        stop(app)


def test_points_of_a_deleted_document_are_removed_at_start(tmp_path):
    """The snapshot is newer than a deletion: the deleted document's points come back with it."""
    config = config_for(tmp_path)
    kept = upload(config, TALK_A, "Morning walk")
    deleted = upload(config, TALK_B, "Persimmon orchard")
    snapshot = tmp_path / "qdrant-snapshot"
    shutil.copytree(tmp_path / "qdrant", snapshot)
    app = create_app(config)
    with app.app_context():
        from wwhd.models import Document

        db.session.delete(db.session.get(Document, deleted))
        db.session.commit()
    get_deps(app).index.delete_document(deleted)
    stop(app)
    shutil.rmtree(tmp_path / "qdrant")
    shutil.copytree(snapshot, tmp_path / "qdrant")

    app, runner = serve(config)
    try:
        assert runner.last_health.behind == [] and len(runner.last_health.unknown_checksums) == 1
        assert found_documents(app, "persimmon orchard harvest") == set()
        assert kept in found_documents(app, "morning walk decision")
    finally:
        stop(app)


def test_flask_commands_do_not_start_the_runner(tmp_path):
    """A `flask` command (migrations, ingest) must not open the embedded index or resume jobs."""
    config = config_for(tmp_path)
    upload(config, TALK_A, "Morning walk")
    import click

    with click.Context(click.Command("db")):
        app = create_app({**config, "JOBS_AUTOSTART": True})
    assert "wwhd_jobs" not in app.extensions and app.extensions.get("wwhd") is None


def test_periodic_check_heals_a_running_server(tmp_path):
    config = {**config_for(tmp_path), "INDEX_CHECK_SECONDS": 0.2}
    document_id = upload(config, TALK_B, "Persimmon orchard")
    app, runner = serve(config)
    try:
        assert runner.last_health.drifted is False
        index = get_deps(app).index
        index.delete_document(document_id)  # Qdrant loses the points while the api runs
        seen = runner.checks
        assert runner.wait_for_check(seen, timeout=60)  # the next periodic check ran
        if runner.last_health.behind != [document_id]:  # it had started before the loss
            assert runner.wait_for_check(runner.checks, timeout=60)
        assert found_documents(app, "persimmon orchard harvest") == {document_id}
    finally:
        stop(app)
