"""`flask wwhd …`: administration commands that call the same functions as the API."""
from __future__ import annotations

import json
from importlib import resources

import click
from flask import current_app
from flask.cli import AppGroup

from .extensions import db

wwhd_cli = AppGroup("wwhd", help="WWHD administration.")


@wwhd_cli.command("create-user")
@click.argument("email")
@click.option("--username", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--role", type=click.Choice(["viewer", "user", "admin"]), default="user", show_default=True)
def create_user_command(email: str, username: str, password: str, role: str) -> None:
    """Create a user account."""
    from .accounts import create_user
    from .errors import ApiError
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
    from sqlalchemy import select

    from .accounts import create_user
    from .models import User
    if not current_app.config["DEMO_USER"]:
        raise click.ClickException("Demo users exist only with APP_ENV=dev.")
    for email, username, password, role in (("demo@wwhd.dev", "demo", "demo-password", "user"),
                                            ("admin@wwhd.dev", "admin", "admin-password", "admin")):
        if db.session.scalar(select(User).where(User.email == email)) is None:
            create_user(email, username, password, role)
        click.echo(f"  {role:5s}  {email}  /  {password}")
    db.session.commit()


@wwhd_cli.command("seed")
def seed_command() -> None:
    """Insert missing default namespaces (migrations already do this)."""
    from .knowledge.namespaces import seed_namespaces
    added = seed_namespaces()
    db.session.commit()
    click.echo(f"{added} namespaces added.")


@wwhd_cli.command("load-samples")
def load_samples() -> None:
    """Load the sample knowledge base shipped in wwhd/samples (idempotent)."""
    from .deps import get_deps
    from .knowledge.chunking import checksum
    from .knowledge.ingest import find_duplicate, index_document, new_document
    from .knowledge.namespaces import seed_namespaces
    from .knowledge.parsers import ParseError, parse_bytes

    seed_namespaces()
    folder = resources.files("wwhd") / "samples"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    index = get_deps().index
    loaded = skipped = 0
    for entry in manifest:
        data = (folder / entry["file"]).read_bytes()
        try:
            parsed = parse_bytes(data, entry["file"])
        except ParseError as exc:
            raise click.ClickException(f"{entry['file']}: {exc}") from None
        existing = find_duplicate(checksum(parsed.text))
        if existing is not None and existing.status == "indexed":
            skipped += 1
            continue
        doc = existing or new_document(entry["namespace"], entry["title"], parsed,
                                       source_url=entry.get("source_url"), youtube_url=entry.get("youtube_url"),
                                       tags=entry.get("tags"), filename=entry["file"], size_bytes=len(data))
        db.session.commit()
        chunks = index_document(doc, index, parsed)
        loaded += 1
        click.echo(f"  indexed {entry['file']} → {doc.namespace} ({chunks} chunks)")
    click.echo(f"Samples: {loaded} loaded, {skipped} already present.")
