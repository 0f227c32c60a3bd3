"""CSV export of admin lists: filtered, brand-scoped, streamed, no secrets,
formula-safe."""

import csv
import io

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from shipments import admin_exports, alerts, keys
from shipments.models import Alert, Shipment

from .admin_helpers import brand_staff


def rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def column(table, name):
    index = table[0].index(name)
    return [row[index] for row in table[1:]]


@pytest.fixture
def theirs(make_shipment, other_brand):
    return make_shipment("THEIRS-1", for_brand=other_brand)


def test_the_export_link_exports_the_filtered_list_of_the_users_brands(agent_client, make_shipment, theirs):
    make_shipment("LM-A", carrier="acme-fleet")
    make_shipment("LM-B", carrier="other-fleet")
    url = reverse("admin:shipments_shipment_export")
    table = rows(agent_client.get(url))
    assert sorted(column(table, "tracking_number")) == ["LM-A", "LM-B"]
    assert column(rows(agent_client.get(url, {"carrier": "acme-fleet"})), "tracking_number") == ["LM-A"]
    assert column(rows(agent_client.get(url, {"q": "LM-B"})), "tracking_number") == ["LM-B"]


def test_another_brands_rows_are_never_exported_even_when_asked_for(agent_client, other_brand, theirs):
    url = reverse("admin:shipments_shipment_export")
    response = agent_client.get(url, {"brand__id__exact": other_brand.pk})
    body = b"".join(response.streaming_content) if response.status_code == 200 else response.content
    assert b"THEIRS-1" not in body


def test_the_list_page_links_to_the_export_with_its_filters(agent_client, shipment):
    response = agent_client.get(reverse("admin:shipments_shipment_changelist"), {"status": "pending"})
    assert b'href="export/?status=pending"' in response.content
    assert reverse("admin:shipments_shipment_import").encode() in response.content


def test_secrets_tokens_and_files_are_never_exported(client, django_user_model, brand, shipment):
    keys.create_api_key(brand=brand, name="k")
    brand.webhook_secret = "whsec_topsecret"
    brand.save()
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    for model in ("brand", "apikey", "shipment"):
        response = client.post(
            reverse(f"admin:shipments_{model}_changelist"),
            {"action": "export_as_csv", "select_across": "1", "index": "0", "_selected_action": ["0"]},
        )
        table = rows(response)
        header = set(table[0])
        assert not {name for name in header if name.endswith("secret") or name == "key_hash"}, header
        assert "public_token" not in header and "proof_photo" not in header
        body = "\n".join(",".join(row) for row in table)
        assert "whsec_topsecret" not in body and shipment.public_token not in body
    users = client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "export_as_csv", "select_across": "1", "index": "0", "_selected_action": ["0"]},
    )
    assert "password" not in rows(users)[0]


def test_the_action_exports_the_selected_rows(agent_client, make_shipment):
    one, two = make_shipment("LM-1"), make_shipment("LM-2")
    response = agent_client.post(
        reverse("admin:shipments_shipment_changelist"),
        {"action": "export_as_csv", "_selected_action": [one.pk], "index": "0"},
    )
    assert column(rows(response), "tracking_number") == ["LM-1"]
    assert two


def test_the_action_cannot_select_another_brands_rows(agent_client, theirs, shipment):
    response = agent_client.post(
        reverse("admin:shipments_shipment_changelist"),
        {"action": "export_as_csv", "_selected_action": [theirs.pk, shipment.pk], "index": "0"},
    )
    assert column(rows(response), "tracking_number") == [shipment.tracking_number]


def test_alerts_export_with_their_filters(agent_client, make_shipment, theirs):
    mine = make_shipment("LM-ALERT")
    alerts.open_alert(shipment=mine, kind="customer_report", now=timezone.now(), detail={"report": "damaged"})
    alerts.open_alert(shipment=theirs, kind="customer_report", now=timezone.now(), detail={"report": "damaged"})
    table = rows(agent_client.get(reverse("admin:shipments_alert_export"), {"kind": "customer_report"}))
    assert column(table, "shipment") == ["LM-ALERT"]
    assert Alert.objects.count() == 2


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+447700900123", "'+447700900123"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_run_are_prefixed(agent_client, make_shipment, value, cell):
    make_shipment("LM-X", recipient_name=value, recipient_phone="")
    table = rows(agent_client.get(reverse("admin:shipments_shipment_export")))
    assert column(table, "recipient_name") == [cell]


def test_numbers_stay_numbers(agent_client, make_shipment):
    make_shipment("LM-X", destination_lng=-0.1276)
    table = rows(agent_client.get(reverse("admin:shipments_shipment_export")))
    assert column(table, "destination_lng") == ["-0.1276"]
    assert column(table, "brand") == ["Acme Parcels"]


def test_without_view_permission_there_is_no_export(client, brand, shipment):
    user = brand_staff(brand, "viewless", apps=())
    client.force_login(user)
    assert client.get(reverse("admin:shipments_shipment_export")).status_code == 403


def test_bad_filters_are_a_400_not_a_500(agent_client):
    response = agent_client.get(reverse("admin:shipments_shipment_export"), {"nonsense__field": "1"})
    assert response.status_code == 400


def test_the_rows_are_read_in_chunks(brand, make_shipment, monkeypatch):
    monkeypatch.setattr(admin_exports, "CHUNK", 2)
    for n in range(5):
        make_shipment(f"LM-{n}")
    chunks = list(admin_exports.csv_chunks(Shipment.objects.order_by("tracking_number")))
    # The header, then 2 + 2 + 1 rows, each piece written as it was read.
    assert [piece.count("\n") for piece in chunks] == [1, 2, 2, 1]


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_export_is_an_async_iterator(make_shipment):
    from django.core.handlers.asgi import ASGIRequest

    make_shipment("LM-ASGI")
    scope = {"type": "http", "method": "GET", "path": "/admin/", "query_string": b"", "headers": []}
    request = ASGIRequest(scope, io.BytesIO())
    response = admin_exports.csv_response(request, Shipment.objects.all())
    assert response.is_async

    async def collect():
        return [part async for part in response.streaming_content]

    body = b"".join(async_to_sync(collect)()).decode()
    assert "LM-ASGI" in body
