"""Local development: nothing to install, nothing to run.

The default session lives in a signed cookie; the ``file`` and ``memory``
backends are ready for named sessions that should stay on the server. The
secret below is public (it is in this file), which is fine on a laptop and
fatal anywhere else: :mod:`config.production` reads its secret from the
environment instead.
"""

import getpass
import os
import tempfile

#: Public on purpose: anyone can forge sessions signed with it.
DEVELOPMENT_SECRET = "development-only-secret-do-not-deploy"

# Outside the working tree, so session files never end up in version control;
# per user, because the folder is created private (0700) to its owner.
SESSION_FOLDER = os.path.join(tempfile.gettempdir(), f"tipsessions-dev-{getpass.getuser()}")

config = {
    "tipsessions": {
        "secret_key": DEVELOPMENT_SECRET,
        "default_backend": "securecookie",
        "cookie_name": "session",
        "cookie_args": {
            # Plain http://127.0.0.1 would never send a Secure cookie back.
            "secure": False,
            "httponly": True,
            "samesite": "Lax",
        },
        "file": {"path": SESSION_FOLDER},
        "memory": {"max_entries": 1000},
        # The user registry behind set_user() and "Your devices": session
        # files here; Redis or Datastore when the app runs on several machines.
        "users": {"backend": "file", "check_interval": 5},
    }
}
