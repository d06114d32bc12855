"""A sign-in flow in one file: the quickstart's example, run by the tests."""

import hmac
import html

import webapp2

import tipsessions

# A real application checks a password hash from its database.
USERS = {"ada@example.com": "lovelace"}

LOGIN_FORM = """<form method="post">
  <input name="email" type="email"> <input name="password" type="password">
  <button>Sign in</button>
</form>"""


class Page(tipsessions.BaseHandler):
    def show(self, body):
        for message, level in self.session.get_flashes():
            self.response.write(f'<p class="{level}">{html.escape(message)}</p>')
        self.response.write(body)


class HomeHandler(Page):
    def get(self):
        email = self.session.get("email")
        if email is None:
            return self.redirect("/login")
        self.show(
            f"<p>Hello, {html.escape(email)}</p>"
            '<form method="post" action="/logout"><button>Sign out</button></form>'
        )


class LoginHandler(Page):
    def get(self):
        self.show(LOGIN_FORM)

    def post(self):
        email = self.request.POST.get("email", "")
        password = self.request.POST.get("password", "")
        expected = USERS.get(email, "")
        if not (expected and hmac.compare_digest(password, expected)):
            self.session.add_flash("Wrong email or password.", "error")
            return self.redirect("/login")
        self.session.regenerate_id()  # a new id at login: no session fixation
        self.session["email"] = email
        self.session.add_flash("Welcome back!", "success")
        return self.redirect("/")


class LogoutHandler(Page):
    def post(self):
        self.session.invalidate()  # deleted on the server, cookie expired
        self.session.add_flash("You are signed out.", "info")
        return self.redirect("/login")


config = {
    "tipsessions": {
        "secret_key": "replace me with 32 random characters",
        "default_backend": "memory",  # one process; see the backends pages
    }
}
app = webapp2.WSGIApplication(
    [("/", HomeHandler), ("/login", LoginHandler), ("/logout", LogoutHandler)],
    config=config,
)

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", 8080, app).serve_forever()
