"""The shipments' list columns (shipments/admin_columns.py): the brand
column only for staff who see more than one brand; the status badge with
its text and the ETA under it; who and where in one cell."""

from datetime import UTC, datetime

LIST = "/admin/shipments/shipment/"


def headers(response) -> list[str]:
    return [getattr(field, "__name__", field) for field in response.context["cl"].list_display]


def test_the_brand_column_is_there_only_for_staff_who_see_several_brands(
    agent_client, admin_client, make_shipment, other_brand
):
    make_shipment()
    assert "brand" not in headers(agent_client.get(LIST))
    make_shipment(for_brand=other_brand)
    assert "brand" in headers(admin_client.get(LIST))


def test_a_row_shows_the_status_in_words_the_eta_and_where(agent_client, make_shipment, settings):
    settings.TIME_ZONE = "UTC"
    make_shipment(
        recipient_name="Ada <b>Lovelace</b>",
        destination_city="London",
        destination_postcode="SW1A 1AA",
        eta=datetime(2026, 12, 3, 15, 30, tzinfo=UTC),
    )
    html = agent_client.get(LIST).content.decode()
    assert '<span class="badge status status-pending">' in html
    assert '<time datetime="2026-12-03T15:30:00+00:00">3 Dec 15:30</time>' in html
    assert "London · SW1A 1AA" in html
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in html
