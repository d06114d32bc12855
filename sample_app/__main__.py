"""``python -m sample_app``: serve the sample on http://127.0.0.1:8080."""

from __future__ import annotations

import argparse
import logging

from sample_app.app import create_app
from sample_app.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sample_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = serve(create_app(debug=True), args.host, args.port)
    print(f"Serving the tipsessions sample on http://{args.host}:{server.server_port}/", flush=True)
    print("Press Ctrl+C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
