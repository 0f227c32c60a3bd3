"""Forms keep working under Referrer-Policy: no-referrer, and CSRF still holds."""

import pytest
from django.test import Client

LOGIN = "/admin/login/"


@pytest.fixture
def browser(db):
    client = Client(enforce_csrf_checks=True)
    client.get(LOGIN)
    return client


def post_login(client, token, **headers):
    return client.post(LOGIN, {"username": "x", "password": "y", "csrfmiddlewaretoken": token}, headers=headers)


def test_null_origin_from_the_same_origin_with_a_token_passes_csrf(browser):
    token = browser.cookies["csrftoken"].value
    response = post_login(browser, token, origin="null", sec_fetch_site="same-origin")
    assert response.status_code == 200  # the login form again (wrong password), not 403


def test_null_origin_from_another_site_is_refused(browser):
    token = browser.cookies["csrftoken"].value
    assert post_login(browser, token, origin="null", sec_fetch_site="cross-site").status_code == 403


def test_null_origin_without_fetch_metadata_is_refused(browser):
    token = browser.cookies["csrftoken"].value
    assert post_login(browser, token, origin="null").status_code == 403


def test_same_origin_without_the_token_is_refused(browser):
    assert post_login(browser, "wrong" * 8, origin="null", sec_fetch_site="same-origin").status_code == 403


def test_every_response_says_no_referrer(browser):
    assert browser.get(LOGIN)["Referrer-Policy"] == "no-referrer"


def test_the_csrf_middleware_in_use_is_djangos_own_check():
    # security.W003 is silenced because it looks for Django's middleware by
    # name; this keeps that from hiding a CSRF middleware that went missing.
    from django.conf import settings
    from django.middleware.csrf import CsrfViewMiddleware
    from django.utils.module_loading import import_string

    assert any(issubclass(import_string(path), CsrfViewMiddleware) for path in settings.MIDDLEWARE)
