from celery import shared_task

from . import folding, rollup


@shared_task(name="analytics.refresh")
def refresh() -> int:
    """Page views into the database, then the touched days into the rollup."""
    folding.fold_counts()
    return rollup.refresh()
