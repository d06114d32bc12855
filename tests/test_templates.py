"""tipsessions.templates: lazy session globals for templates.

The promise under test is laziness: a template that does not read the
session must not load one (no backend call) and must not change the
response (no ``Set-Cookie``, no ``Vary: Cookie``). A spying backend counts
the loads, so "not loaded" is observed, not inferred.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jinja2
import pytest
import webapp2
import webtest

from tipsessions import BaseHandler
from tipsessions.backends.memory import MemoryBackend
from tipsessions.store import existing_store
from tipsessions.templates import LazySession, context

SECRET = "templates-test-secret-0123456789"

jinja = jinja2.Environment(autoescape=True)


class CountingBackend(MemoryBackend):
    """The memory backend, counting how often a session is loaded."""

    loads: ClassVar[list[str]] = []

    def load(self, cookie_name: str, cookie_value: str | None, lifetime: Any) -> Any:
        CountingBackend.loads.append(cookie_name)
        return super().load(cookie_name, cookie_value, lifetime)


@pytest.fixture(autouse=True)
def fresh_counter() -> None:
    CountingBackend.loads.clear()


class TemplateHandler(BaseHandler):
    """Renders the template source given in ``?t=``; ``/set`` stores values first."""

    def get(self, action: str) -> None:
        if action == "set":
            self.session["email"] = "ada@example.com"
            self.session.add_flash("Saved.", "success")
            self.session.add_flash("Check your inbox.", None)
            return
        if action == "token":
            self.session.set_t("email", "api@example.com")
            self.session.set_t("auth", "token")
        source = self.request.GET["t"]
        self.response.write(jinja.from_string(source).render(context(self)))


def browser() -> webtest.TestApp:
    app = webapp2.WSGIApplication(
        [webapp2.Route("/<action>", TemplateHandler)],
        config={
            "tipsessions": {
                "secret_key": SECRET,
                "default_backend": "counting",
                "backends": {"counting": CountingBackend},
            }
        },
    )
    return webtest.TestApp(app)


def render(client: webtest.TestApp, source: str, action: str = "page") -> webtest.TestResponse:
    return client.get(f"/{action}", {"t": source})


def test_a_template_that_reads_no_session_loads_none_and_sets_no_cookie() -> None:
    client = browser()
    client.get("/set")
    CountingBackend.loads.clear()

    response = render(client, "<p>{{ 1 + 1 }}</p>")

    assert response.text == "<p>2</p>"
    assert CountingBackend.loads == []
    assert response.headers.getall("Set-Cookie") == []
    assert "Vary" not in response.headers


def test_building_the_context_creates_no_store() -> None:
    app = webapp2.WSGIApplication(config={"tipsessions": {"secret_key": SECRET}})
    request = webapp2.Request.blank("/")
    request.app = app

    globals_ = context(request)
    jinja.from_string("{{ 'no session here' }}").render(globals_)

    assert existing_store(request) is None


def test_reading_a_value_loads_the_session_once() -> None:
    client = browser()
    client.get("/set")
    CountingBackend.loads.clear()

    response = render(
        client, "{{ session.email }}|{{ session['email'] }}|{{ session.get('email') }}"
    )

    assert response.text == "ada@example.com|ada@example.com|ada@example.com"
    assert CountingBackend.loads == ["session"]


def test_a_missing_key_renders_as_undefined() -> None:
    client = browser()
    response = render(
        client, "[{{ session.email }}]{% if not session.email %} anonymous{% endif %}"
    )
    assert response.text == "[] anonymous"


def test_membership_iteration_and_new() -> None:
    client = browser()
    assert render(client, "{{ 'email' in session }} {{ session.new }}").text == "False True"
    client.get("/set")
    response = render(
        client, "{{ 'email' in session }} {{ session | list | join(',') }} {{ session.new }}"
    )
    assert response.text == "True email False"


def test_flashes_come_once_with_their_levels() -> None:
    client = browser()
    client.get("/set")
    source = "{% for message, level in flashes() %}{{ level }}:{{ message }};{% endfor %}"

    first = render(client, source)
    second = render(client, source)

    assert first.text == "success:Saved.;None:Check your inbox.;"
    assert second.text == ""


def test_reading_no_flashes_changes_nothing() -> None:
    client = browser()
    client.get("/set")
    render(client, "{{ flashes() | length }}")

    response = render(client, "{{ flashes() | length }}")

    assert response.text == "0"
    assert response.headers.getall("Set-Cookie") == []


def test_transient_values_are_seen_and_never_stored() -> None:
    client = browser()

    response = render(client, "{{ transient('auth') }} {{ session.email }}", action="token")

    assert response.text == "token api@example.com"
    assert response.headers.getall("Set-Cookie") == []
    assert render(client, "[{{ transient('auth', 'none') }}]").text == "[none]"


def test_context_can_name_another_session() -> None:
    class CartPage(BaseHandler):
        def get(self) -> None:
            cart = self.session_store.get_session("cart", backend="memory")
            cart["items"] = [1, 2]
            template = jinja.from_string("{{ cart['items'] | join('+') }}")
            page = context(self, name="cart", backend="memory")
            self.response.write(template.render(cart=page["session"]))

    app = webapp2.WSGIApplication([("/", CartPage)], config={"tipsessions": {"secret_key": SECRET}})
    response = webtest.TestApp(app).get("/")

    assert response.text == "1+2"
    assert [c.split("=")[0] for c in response.headers.getall("Set-Cookie")] == ["cart"]


def test_the_request_works_as_source_outside_a_handler() -> None:
    app = webapp2.WSGIApplication(config={"tipsessions": {"secret_key": SECRET}})
    request = webapp2.Request.blank("/")
    request.app = app

    page = context(request)
    page_text = jinja.from_string("{{ session.new }}").render(page)

    assert page_text == "True"
    assert existing_store(request) is not None


def test_the_view_is_read_only() -> None:
    view = LazySession(lambda: pytest.fail("must not load"))  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError):
        view["email"] = "x"  # type: ignore[index]
    assert repr(view) == "<LazySession not loaded>"
