"""Indexes for the admin's search (shipments/admin_search.py), on
PostgreSQL only: each is built on the expression Django puts in the WHERE
clause (``UPPER(col::text)`` for icontains and istartswith; the postcode
without its spaces for a postcode typed without one). On SQLite the
migration does nothing; the searches scan there.

Built CONCURRENTLY, outside a transaction, so that a large table keeps
taking events while they are made.
"""

from django.db import migrations

TRIGRAM_INDEXES = {
    "shipment_tracking_trgm": "UPPER((tracking_number)::text)",
    "shipment_name_trgm": "UPPER((recipient_name)::text)",
    "shipment_email_trgm": "UPPER((recipient_email)::text)",
    "shipment_postcode_trgm": "UPPER((destination_postcode)::text)",
    "shipment_postcode_compact_trgm": "(REPLACE(UPPER(destination_postcode), ' ', '')::text)",
}
# The admin's exact fields compare UPPER(col::text) = UPPER(term), which
# the plain indexes on these columns cannot serve; one branch of the
# search's OR without an index would make the whole search scan.
EXACT_INDEXES = {
    "shipment_order_ref_upper": "UPPER((order_ref)::text)",
    "shipment_phone_upper": "UPPER((recipient_phone)::text)",
}
INDEXES = {
    **{name: f"USING gin ({expression} gin_trgm_ops)" for name, expression in TRIGRAM_INDEXES.items()},
    **{name: f"(({expression}))" for name, expression in EXACT_INDEXES.items()},
}


class OnPostgres(migrations.RunSQL):
    """SQL that only PostgreSQL runs; elsewhere a no-op either way."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("shipments", "0007_alert_queue_thresholds_visits")]

    operations = [
        # pg_trgm is a trusted extension: the database's owner may create it.
        OnPostgres("CREATE EXTENSION IF NOT EXISTS pg_trgm", migrations.RunSQL.noop),
        *(
            OnPostgres(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON shipments_shipment {definition}",
                f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
            )
            for name, definition in INDEXES.items()
        ),
    ]
