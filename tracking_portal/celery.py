import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")

app = Celery("tracking_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def drop_broken_database_connections(task=None, **kwargs):
    """After each task in a worker, drop a database connection that broke
    or was left mid-transaction, as Django does at the end of a request.
    A healthy one stays with the worker process for its next task: handing
    it back to the pool and taking it again cost more than many tasks'
    own queries."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
            connection.close()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()
