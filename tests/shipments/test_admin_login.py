"""Admin logins are throttled per username and per client address: past
five failures in fifteen minutes even the right password is refused, with
a page that says why, until the window passes."""

from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.utils import timezone

LOGIN = "/admin/login/"


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "right-password")


def attempt(client, username, password, address="127.0.0.1", **headers):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address, headers=headers
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_fifteen_wrong_passwords_then_the_right_one_is_refused(client, root):
    for n in range(15):
        attempt(client, "root", f"guess-{n}")
    response = attempt(client, "root", "right-password")
    assert response.status_code == 429
    assert "Logins are refused for now" in response.content.decode()
    assert not logged_in(client)


def test_a_few_mistakes_still_let_the_right_password_in(client, root):
    for n in range(4):
        assert attempt(client, "root", f"guess-{n}").status_code == 200  # the form again
    response = attempt(client, "root", "right-password")
    assert response.status_code == 302
    assert logged_in(client)


def test_failures_for_one_username_count_from_every_address(root):
    for n in range(5):
        attempt(Client(), "root", f"guess-{n}", address=f"127.0.0.{n + 10}")
    client = Client()
    assert attempt(client, "root", "right-password", address="127.0.0.99").status_code == 429
    assert not logged_in(client)


def test_failures_from_one_address_count_for_every_username(client, root):
    for n in range(5):
        attempt(client, f"someone-{n}", "guess", address="127.0.0.5")
    assert attempt(client, "root", "right-password", address="127.0.0.5").status_code == 429
    assert not logged_in(client)


def test_a_forwarded_for_header_does_not_make_a_new_address(root):
    # The address counted is the one the ASGI server resolved; a header sent
    # by the client itself is no way around the limit.
    for n in range(5):
        attempt(Client(), f"someone-{n}", "guess", address="127.0.0.7", x_forwarded_for=f"203.0.113.{n}")
    client = Client()
    response = attempt(client, "root", "right-password", address="127.0.0.7", x_forwarded_for="203.0.113.200")
    assert response.status_code == 429


def test_the_limit_lifts_when_the_window_passes(client, root):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for n in range(5):
            attempt(client, "root", f"guess-{n}")
        assert attempt(client, "root", "right-password").status_code == 429
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert attempt(client, "root", "right-password").status_code == 302
        assert logged_in(client)


def test_the_limit_holds_under_asgi(root):
    # The portal runs under ASGI, where django-axes takes its async path.
    client = AsyncClient()

    async def attempts():
        for n in range(5):
            await client.post(LOGIN, {"username": "root", "password": f"guess-{n}"})
        return await client.post(LOGIN, {"username": "root", "password": "right-password", "next": "/admin/"})

    response = async_to_sync(attempts)()
    assert response.status_code == 429
    assert "Logins are refused for now" in response.content.decode()
