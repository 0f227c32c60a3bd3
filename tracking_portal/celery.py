import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")

app = Celery("tracking_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def return_database_connections(task=None, **kwargs):
    """After each task in a worker, give its connection back to the pool, or
    drop it if it broke, as Django does at the end of a request."""
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()
