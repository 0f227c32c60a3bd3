"""The worker's database connection between tasks."""

from types import SimpleNamespace

import pytest
from django.db import connection

from tracking_portal.celery import drop_broken_database_connections

A_TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))

# An in-memory SQLite database is never really closed, so only a server
# connection can show what is dropped.
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a PostgreSQL connection")


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_stays_for_the_next_task():
    connection.ensure_connection()
    held = connection.connection
    drop_broken_database_connections(task=A_TASK)
    assert connection.connection is held


@pytest.mark.django_db(transaction=True)
def test_a_connection_left_mid_transaction_is_dropped():
    connection.ensure_connection()
    connection.set_autocommit(False)
    drop_broken_database_connections(task=A_TASK)
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_broke_is_dropped_and_one_that_survived_an_error_is_kept():
    connection.ensure_connection()
    held = connection.connection
    connection.errors_occurred = True
    drop_broken_database_connections(task=A_TASK)
    assert connection.connection is held and not connection.errors_occurred

    connection.errors_occurred = True
    connection.connection.close()
    drop_broken_database_connections(task=A_TASK)
    assert connection.connection is None
