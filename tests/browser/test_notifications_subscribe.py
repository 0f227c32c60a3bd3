"""Opting in to a parcel's updates from its tracking page, in a real
browser: with htmx the form is loaded into the page and swaps in place;
without JavaScript the page links to the customer's forms, and the form
posts and answers with a page of its own."""

import pytest
from playwright.sync_api import expect

from notifications.models import Subscription

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_opting_in_with_javascript_swaps_the_form_in_place(asgi_server, browser, shipment):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(asgi_server + shipment.get_absolute_url())
    notify = page.locator("#notify")

    # The phone field brings up the phone keypad, the email one the @ keyboard.
    expect(notify.get_by_label("Mobile number")).to_have_attribute("type", "tel")
    expect(notify.get_by_label("Email address")).to_have_attribute("type", "email")
    notify.get_by_label("Mobile number").fill("not a number")
    notify.get_by_role("button", name="Notify me").click()
    expect(page.locator("#notify-phone-error")).to_contain_text("Enter a mobile number")
    assert page.url == asgi_server + shipment.get_absolute_url()

    page.locator("#notify").get_by_label("Mobile number").fill("07700 900456")
    page.locator("#notify").get_by_role("button", name="Notify me").click()
    expect(page.locator("#notify")).to_contain_text("We will text +44•••456")
    assert page.url == asgi_server + shipment.get_absolute_url()
    assert list(Subscription.objects.values_list("channel", "address")) == [("sms", "+447700900456")]
    context.close()


def test_opting_in_without_javascript_posts_and_comes_back(asgi_server, browser, shipment):
    context = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto(asgi_server + shipment.get_absolute_url())
    # The page is cached and shared: the form is a link away.
    expect(page.locator("#notify")).to_have_count(0)
    page.get_by_role("link", name="Leave instructions or get updates").click()
    notify = page.locator("#notify")
    notify.get_by_label("Email address").fill("not an address")
    notify.get_by_role("button", name="Notify me").click()
    expect(page.locator("#notify-email-error")).to_contain_text("Enter an email address")

    notify.get_by_label("Email address").fill("grace@example.com")
    notify.get_by_role("button", name="Notify me").click()
    expect(page.locator("#notify")).to_contain_text("We will email g•••@example.com")
    expect(page.locator(".brand-bar")).to_contain_text("Acme Parcels")
    page.get_by_role("link", name="Back to your parcel").click()
    assert page.url == asgi_server + shipment.get_absolute_url()
    assert list(Subscription.objects.values_list("channel", "address")) == [("email", "grace@example.com")]
    context.close()
