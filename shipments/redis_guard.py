"""The Redis outage guard, now kept by the one Redis client factory
(tracking_portal/redis.py, which says the rule). These names stay
importable from here for the modules that still do (notifications.tasks)."""

from tracking_portal.redis import OUTAGE_ERRORS, Outage, Skipped, forget_outages, outage_of

__all__ = ["OUTAGE_ERRORS", "Outage", "Skipped", "forget_outages", "outage_of"]
