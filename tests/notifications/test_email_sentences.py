"""Emails read as sentences: every paragraph starts with a capital letter
in each language, whatever the template's greeting leaves below it
(notifications.content.sentences_capitalised)."""

import re

import pytest

from notifications import content
from notifications.defaults import default_texts
from shipments.statuses import Status

LANGUAGES = ("en", "es", "de")
STATUSES = (Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT, Status.DELIVERED, Status.EXCEPTION)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", STATUSES)
def test_every_paragraph_of_a_default_email_starts_with_a_capital(shipment, language, status):
    # The defaults (English and Spanish) carry on in lowercase below the greeting.
    if language != "de":
        assert any(p[:1].islower() for p in paragraphs(default_texts(status, language)[2]))
    texts = content.render_texts(shipment, status, language)
    for paragraph in paragraphs(texts.email):
        assert paragraph[:1].isupper(), paragraph
    assert texts.subject[:1].isupper()


@pytest.mark.parametrize(
    ("language", "greeting", "next_line"),
    [("en", "Hi Ada,", "Your parcel"), ("es", "Hola Ada:", "Tu paquete"), ("de", "Hallo Ada,", "Ihr Paket")],
)
def test_the_line_after_the_greeting(shipment, language, greeting, next_line):
    email = content.render_texts(shipment, Status.DELIVERED, language).email
    first, second = paragraphs(email)[:2]
    assert first == greeting and second.startswith(next_line)


def test_without_a_first_name_the_greeting_closes_up(make_shipment):
    shipment = make_shipment(recipient_name="")
    email = content.render_texts(shipment, Status.DELIVERED, "en").email
    assert email.startswith("Hi,\n\nYour parcel")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi Ada,\n\nwe tried.\n\nhttps://example.com/t/x", "Hi Ada,\n\nWe tried.\n\nhttps://example.com/t/x"),
        ("hola:\n\nalgo pasa.", "Hola:\n\nAlgo pasa."),
        ("Hallo ,\n\nwir prüfen.", "Hallo,\n\nWir prüfen."),
        ("ada@example.com wrote", "ada@example.com wrote"),
        ("\n\n", "\n\n"),
    ],
)
def test_sentences_capitalised(text, expected):
    assert content.sentences_capitalised(text) == expected


def test_a_brands_own_template_gets_capitals_too(shipment):
    from notifications.models import MessageTemplate

    template = MessageTemplate(
        brand=shipment.brand, status="delivered", language="en", email_subject="done", email_text="hey.\n\nall good."
    )
    texts = content.render_texts(shipment, "delivered", "en", template)
    assert (texts.subject, texts.email) == ("Done", "Hey.\n\nAll good.")
    assert re.search(r"\$\w", texts.email) is None
