"""The heavy imports that wait until they are needed, so `flask wwhd …` starts in well under a second.

Every `flask` command (and gunicorn) builds the app first: `wsgi.py` → `create_app()` imports every
blueprint. Before, that pulled in the whole retrieval and LLM stack (~1.6 s of a 2.4 s import on 2
cores; 11–20 s for a CLI call on a busy machine). Now these modules are imported only by the code
that uses them; the cost is each one's own import on an idle 2-core machine (`python -X importtime`):

- `qdrant_client` (~0.6 s): `wwhd/knowledge/index.py`, reached from `deps.build_deps()` (first chat,
  gunicorn's `post_worker_init`, CLI commands that touch the index), `ingest.write_vectors()` and
  `reconcile`. `IndexUnavailable` lives in `knowledge/errors.py` so `except` clauses need no client.
- `langgraph` and `langchain_core` (~0.7 s): `wwhd/pipeline/graph.py` and `nodes.py`, reached from
  `deps.build_deps()` and `turns.TurnWorker` / `_pump()`.
- `langchain_openai` and `openai` (~0.4 s): `wwhd/providers/openai_compat.py`, imported by the
  provider factory only when a key or base URL is set (it maps the SDK's errors to
  `providers.base.ProviderError`, so nothing else imports `openai`).
- `pypdf` (~0.15 s): `knowledge/parsers/pdf.parse_pdf()`, only for PDFs.
- `wordllama` (and numpy, ~0.2 s): `providers/local_embed._model()`, reached from
  `deps.build_deps()`, which imports the provider factory.
- `portalocker` (imports `redis`, ~0.2 s): `knowledge/folder_lock.held_by_another_process()`
  (CLI index commands, `deps.build_deps()`), only when an embedded Qdrant folder exists.
- `boto3` (~0.16 s): `knowledge/files.S3FileStore`, only S3 deployments.
- `gevent`: never imported by the app; `offload.cpu_bound()` looks it up in `sys.modules`, where
  only a gevent worker has put it.
- `alembic` via `flask_migrate` (~0.1 s): `database.LazyMigrateGroup` lists `flask db` and imports
  Flask-Migrate when a `db` command runs; code that calls `flask_migrate.upgrade()` directly calls
  `database.init_migrate(app)` first.

Type hints name these classes under `if TYPE_CHECKING:` (annotations are strings). `tests/test_lazy_imports.py`
checks in a fresh interpreter that building the app imports none of HEAVY_MODULES, and
`bench/cli_startup.py` prints the start-up time.
"""

HEAVY_MODULES = (
    "qdrant_client",
    "langgraph",
    "langchain_core",
    "langchain_openai",
    "openai",
    "pypdf",
    "alembic",
    "wordllama",
    "numpy",
    "portalocker",
    "boto3",
    "gevent",
)
