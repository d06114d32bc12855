"""``make bench``: what a session costs per request, against the peers a webapp2 user would pick.

``python -m bench`` (see ``__main__``) starts the servers, runs every variant
in worker processes in interleaved rounds, drives gunicorn with wrk, checks
the targets and writes ``bench/RESULTS.md`` and ``bench/overhead.png``.
"""
