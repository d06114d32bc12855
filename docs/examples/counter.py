import webapp2

import tipsessions


class CounterHandler(tipsessions.BaseHandler):
    def get(self):
        self.session["visits"] = self.session.get("visits", 0) + 1
        self.response.write(f"Visit number {self.session['visits']}")


config = {"tipsessions": {"secret_key": "replace me with 32 random characters"}}
app = webapp2.WSGIApplication([("/", CounterHandler)], config=config)
if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", 8080, app).serve_forever()
