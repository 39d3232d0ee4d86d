"""`flask wwhd …`: administration commands that call the same functions as the API."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import documents
from .accounts import create_user
from .deps import get_deps, get_runner, maintenance_index
from .errors import ApiError
from .extensions import db
from .knowledge import folder_lock, reconcile
from .knowledge.files import get_file_store
from .knowledge.namespaces import load_registry, seed_namespaces
from .links import youtube_id
from .models import Document, Namespace, User
from .validation import link_problem

wwhd_cli = AppGroup("wwhd", help="WWHD administration.")


def require_free_index() -> None:
    """Embedded Qdrant (no QDRANT_URL) locks its folder to one process: if another one (the server)
    holds it, stop here with what to do, before anything is written to SQL."""
    config = current_app.config
    path = config["QDRANT_PATH"]
    if config["QDRANT_URL"] or not path or path == ":memory:":
        return
    if folder_lock.held_by_another_process(path):
        raise index_in_use(path)


def index_in_use(path: str) -> click.ClickException:
    return click.ClickException(
        f"The embedded Qdrant index in {path} is in use by another process, most likely the "
        "running server (embedded Qdrant allows one process at a time). Stop the server, run "
        "this command again, then start the server; or point QDRANT_URL at a Qdrant server."
    )


@wwhd_cli.command("create-user")
@click.argument("email")
@click.option("--username", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option(
    "--role", type=click.Choice(["viewer", "user", "admin"]), default="user", show_default=True
)
def create_user_command(email: str, username: str, password: str, role: str) -> None:
    """Create a user account."""
    try:
        user = create_user(email, username, password, role)
        db.session.commit()
    except ApiError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {user.role} {user.username} <{user.email}> (id {user.id}).")


@wwhd_cli.command("ensure-demo-user")
def ensure_demo_user() -> None:
    """Dev only: create the demo accounts `make dev` prints (never outside APP_ENV=dev)."""
    if not current_app.config["DEMO_USER"]:
        raise click.ClickException("Demo users exist only with APP_ENV=dev.")
    for email, username, password, role in (
        ("demo@wwhd.dev", "demo", "demo-password", "user"),
        ("admin@wwhd.dev", "admin", "admin-password", "admin"),
    ):
        if db.session.scalar(select(User).where(User.email == email)) is None:
            create_user(email, username, password, role)
        click.echo(f"  {role:5s}  {email}  /  {password}")
    db.session.commit()


@wwhd_cli.command("seed")
def seed_command() -> None:
    """Insert missing default namespaces (migrations already do this)."""
    added = seed_namespaces()
    db.session.commit()
    click.echo(f"{added} namespaces added.")


@wwhd_cli.command("load-samples")
@click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False),
    help="A folder with manifest.json and its files (default: the shipped samples).",
)
def load_samples(folder: str | None) -> None:
    """Load the sample knowledge base shipped in wwhd/samples, or another folder (idempotent)."""
    require_free_index()
    app = current_app._get_current_object()
    seed_namespaces()
    db.session.commit()
    folder = Path(folder) if folder else resources.files("wwhd") / "samples"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    loaded = skipped = 0
    for entry in manifest:
        try:
            document_id = _add_file(
                entry["namespace"],
                (folder / entry["file"]).read_bytes(),
                entry["file"],
                title=entry["title"],
                source_url=entry.get("source_url"),
                youtube_url=entry.get("youtube_url"),
                tags=entry.get("tags"),
            )
        except documents.Duplicate as dup:
            db.session.rollback()
            if dup.existing.status == "indexed":
                skipped += 1
                continue
            document_id = dup.existing.id  # pending or left processing by a dead process
        except ApiError as exc:
            db.session.rollback()
            raise click.ClickException(f"{entry['file']}: {exc.message}") from None
        status = get_runner(app).run(document_id)
        db.session.expire_all()
        doc = db.session.get(Document, document_id)
        if status != "indexed":
            raise click.ClickException(f"{entry['file']}: {doc.error if doc else status}")
        loaded += 1
        click.echo(f"  indexed {entry['file']} → {doc.namespace} ({doc.chunk_count} chunks)")
    click.echo(f"Samples: {loaded} loaded, {skipped} already present.")


def _add_file(namespace: str, data: bytes, filename: str, **fields) -> int:
    """One file through the documents service, committed as pending; returns its id."""
    added = documents.add(
        namespace,
        data=data,
        filename=filename,
        store=get_file_store(current_app._get_current_object()),
        **fields,
    )
    db.session.commit()
    return added.document.id


@wwhd_cli.command("eval")
@click.argument("cases_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the full report here.",
)
@click.option(
    "--min-router-accuracy", type=click.FloatRange(0, 1), help="Fail below this share (0-1)."
)
@click.option("--min-recall", type=click.FloatRange(0, 1), help="Fail below this recall@5 (0-1).")
@click.option("--min-mrr", type=click.FloatRange(0, 1), help="Fail below this MRR (0-1).")
@click.option(
    "--min-citation-precision", type=click.FloatRange(0, 1), help="Fail below this share (0-1)."
)
@click.option("--min-oos-honesty", type=click.FloatRange(0, 1), help="Fail below this share (0-1).")
@click.option(
    "--min-oos-honesty-far", type=click.FloatRange(0, 1), help="Fail below this share (0-1)."
)
@click.option(
    "--min-citation-on-time",
    type=click.FloatRange(0, 1),
    help="Fail below this share of citations within ±60 s (0-1).",
)
@click.option(
    "--min-answered", type=click.FloatRange(0, 1), help="Fail below this in-scope answered share."
)
@click.option("--quiet", is_flag=True, help="No per-case progress lines.")
def eval_command(
    cases_file: str,
    json_out: str | None,
    min_router_accuracy: float | None,
    min_recall: float | None,
    min_mrr: float | None,
    min_citation_precision: float | None,
    min_oos_honesty: float | None,
    min_oos_honesty_far: float | None,
    min_citation_on_time: float | None,
    min_answered: float | None,
    quiet: bool,
) -> None:
    """Run evaluation cases (JSON Lines) through the chat pipeline and report answer quality.

    Exits with status 1 when a metric is below its --min-* threshold.
    """
    # lazy: evaluation imports pipeline.graph, which imports langgraph (wwhd/lazy.py)
    from .evaluation import CaseFileError, check_thresholds, evaluate, format_report, load_cases

    minimums = {
        "router_accuracy": min_router_accuracy,
        "recall_at_5": min_recall,
        "mrr": min_mrr,
        "citation_precision": min_citation_precision,
        "oos_honesty": min_oos_honesty,
        "oos_honesty_far": min_oos_honesty_far,
        "citation_on_time": min_citation_on_time,
        "answered_rate": min_answered,
    }
    require_free_index()
    deps = get_deps()

    def progress(result) -> None:
        if not quiet:
            click.echo(
                f"  {result.id:<10} {'ok' if not result.failures else ','.join(result.failures)}"
            )

    try:
        cases = load_cases(cases_file)
        report = evaluate(deps, tuple(load_registry()), cases, progress)
    except CaseFileError as exc:
        raise click.ClickException(str(exc)) from None
    report["model"] = deps.chat_model.name
    report["embedder"] = deps.embedder.name if deps.embedder else None
    report["cases_file"] = cases_file
    report["minimums"] = {name: value for name, value in minimums.items() if value is not None}
    failed = check_thresholds(report["summary"], minimums)
    report["passed"] = not failed
    click.echo(format_report(report, minimums))
    if json_out:
        with open(json_out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, ensure_ascii=False)
        click.echo(f"Report written to {json_out}.")
    if failed:
        for line in failed:
            click.echo(f"FAIL: {line}", err=True)
        raise click.exceptions.Exit(1)


INGEST_SUFFIXES = (".txt", ".md", ".markdown", ".srt", ".vtt", ".json", ".pdf")


def _ingest_files(paths: tuple[str, ...]) -> list:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in INGEST_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return list(dict.fromkeys(files))


@wwhd_cli.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--namespace", required=True, help="Namespace the documents go into.")
@click.option("--youtube-url", help="Video the transcript belongs to (single file only).")
@click.option("--title", help="Document title (single file only; default: from the file).")
@click.option("--source-url", help="Where the source lives on the web (single file only).")
def ingest_command(
    paths: tuple[str, ...],
    namespace: str,
    youtube_url: str | None,
    title: str | None,
    source_url: str | None,
) -> None:
    """Ingest files and folders (.txt .md .srt .vtt .json .pdf, folders recursively) and index them.

    Prints indexed / duplicate / failed with reasons and exits with status 1 when anything failed.
    With embedded Qdrant (no QDRANT_URL) stop the server first: local mode locks its folder (the
    command checks and says so before writing anything).
    """
    app = current_app._get_current_object()
    files = _ingest_files(paths)
    if not files:
        raise click.ClickException(f"No files to ingest (looked for {' '.join(INGEST_SUFFIXES)}).")
    if len(files) > 1 and (youtube_url or title or source_url):
        raise click.ClickException(
            "--youtube-url, --title and --source-url apply to a single file; "
            f"{len(files)} files were given."
        )
    for option, url in (("--source-url", source_url), ("--youtube-url", youtube_url)):
        problem = url and link_problem(url)
        if problem:
            raise click.ClickException(f"{option} {problem}.")
    if youtube_url and not youtube_id(youtube_url):
        raise click.ClickException(f"--youtube-url {youtube_url!r} is not a YouTube video link.")
    try:
        documents.require_namespace(namespace)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    require_free_index()  # before any document row: a held index must not leave `failed` rows
    try:
        get_deps(app)  # open the index now; a server that started since the check is caught here
    except RuntimeError as exc:
        if "already accessed by another instance" in str(exc):
            raise index_in_use(app.config["QDRANT_PATH"]) from None
        raise

    indexed: list[str] = []
    duplicates: list[str] = []
    failed: list[str] = []
    with click.progressbar(
        files, label="Ingesting", item_show_func=lambda p: p.name if p else None
    ) as bar:
        for path in bar:
            try:
                document_id = _add_file(
                    namespace,
                    path.read_bytes(),
                    path.name,
                    title=title,
                    youtube_url=youtube_url,
                    source_url=source_url,
                )
            except documents.Duplicate as dup:
                db.session.rollback()
                doc = dup.existing
                duplicates.append(
                    f"{path}: same content as document {doc.id} ({doc.title!r}, {doc.status})"
                )
                continue
            except (ApiError, OSError) as exc:
                db.session.rollback()
                failed.append(f"{path}: {getattr(exc, 'message', None) or exc}")
                continue
            status = get_runner(app).run(document_id)
            db.session.expire_all()
            doc = db.session.get(Document, document_id)
            if status == "indexed":
                indexed.append(f"{path}: document {document_id}, {doc.chunk_count} chunks")
            else:
                failed.append(f"{path}: {doc.error if doc else status}")
    for label, lines in (("indexed", indexed), ("duplicate", duplicates), ("failed", failed)):
        for line in lines:
            click.echo(f"  {label:9s} {line}")
    click.echo(f"{len(indexed)} indexed, {len(duplicates)} duplicate, {len(failed)} failed.")
    if failed:
        raise click.exceptions.Exit(1)


@wwhd_cli.command("reindex")
@click.option("--namespace", help="Rebuild only this namespace.")
@click.option(
    "--all", "everything", is_flag=True, help="Rebuild every document and drop unknown points."
)
def reindex_command(namespace: str | None, everything: bool) -> None:
    """Rebuild Qdrant points from the SQL record (chunk rows), for one namespace or all."""
    if bool(namespace) == everything:
        raise click.ClickException("Give either --namespace NAME or --all.")
    if namespace and db.session.get(Namespace, namespace) is None:
        raise click.ClickException(f"Unknown namespace {namespace!r}.")
    require_free_index()
    try:
        with maintenance_index() as index:
            counts = documents.reindex_namespace(namespace, index)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    for document_id in counts["requeued"]:
        click.echo(
            f"  document {document_id} had no chunk rows: re-chunking → "
            f"{get_runner(current_app._get_current_object()).run(document_id)}"
        )
    click.echo(
        f"Reindexed {counts['documents']} documents ({counts['chunks']} chunks) in "
        f"{namespace or 'all namespaces'}; {counts['orphans_deleted']} unknown points deleted."
    )


@wwhd_cli.command("reconcile")
@click.option("--repair", is_flag=True, help="Fix the drift found.")
def reconcile_command(repair: bool) -> None:
    """Compare SQL with Qdrant: orphan points, missing points, stale payloads, old collections.

    Without --repair, exits with status 1 when there is drift.
    """
    require_free_index()
    with maintenance_index() as index:
        drift = reconcile.repair(index) if repair else reconcile.report(index)
    click.echo(f"{drift.points} points, {drift.chunks} chunk rows of indexed documents.")
    for label, count, items in (
        ("orphan points (no chunk row)", drift.orphans, drift.orphan_points),
        ("missing points (chunk row, no point)", drift.missing, drift.missing_points),
        ("stale payloads", drift.stale, drift.stale_points),
        ("old collections", len(drift.old_collections), drift.old_collections),
    ):
        click.echo(f"  {label}: {count}" + (f"  e.g. {', '.join(items[:3])}" if items else ""))
    if not drift.total:
        click.echo("No drift.")
    elif repair:
        click.echo(f"Repaired {drift.total} differences.")
    else:
        click.echo("Run with --repair to fix.")
        raise click.exceptions.Exit(1)
