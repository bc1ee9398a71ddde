"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from accesspoint.app import create_app

app = create_app()
