"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app` and `flask --app wsgi`."""

from flask.cli import get_load_dotenv, load_dotenv

from wwhd import create_app

# `.flaskenv`/`.env` as `flask` commands read them (gunicorn.conf.py does the same for the master), so
# any WSGI server sees the settings the CLI sees. Variables already set win; a no-op under `flask`.
if get_load_dotenv():
    load_dotenv()

app = create_app()
