"""Alembic environment: run with a connection handed over by facegate.gallery.store."""

from __future__ import annotations

from alembic import context

from facegate.gallery.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
