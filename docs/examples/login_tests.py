"""Tests of the quickstart's sign-in flow (login.py), with tipsessions.testing."""

import webtest
from login import app

from tipsessions.testing import session_transaction, stored_session


def test_home_greets_a_signed_in_user():
    client = webtest.TestApp(app)
    with session_transaction(client) as session:
        session["email"] = "ada@example.com"  # signed in, without the form

    assert "Hello, ada@example.com" in client.get("/")


def test_signing_in_stores_the_email_and_a_welcome():
    client = webtest.TestApp(app)
    client.post("/login", {"email": "ada@example.com", "password": "lovelace"})

    session = stored_session(client)
    assert session["email"] == "ada@example.com"
    assert session.get_flashes() == [("Welcome back!", "success")]  # still pending


def test_signing_out_ends_the_session():
    client = webtest.TestApp(app)
    with session_transaction(client) as session:
        session["email"] = "ada@example.com"

    client.post("/logout")

    assert "email" not in stored_session(client)
