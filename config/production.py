"""Production: secrets from the environment, cookies only over HTTPS.

``TIPSESSIONS_SECRET_KEY`` holds one secret, or several separated by commas
to rotate them: the first signs and encrypts new cookies, every one still
verifies and decrypts. To rotate, put the new secret first and keep the old
one second for as long as its sessions may live (``session_absolute_max_age``
below), then drop it. Generate a secret with::

    python -m tipsessions keygen

Loading this module without the variable raises
:class:`tipsessions.ConfigError`: a deployment must never fall back to a
secret that is written down somewhere.
"""

import os

from tipsessions import ConfigError

SECRET_VARIABLE = "TIPSESSIONS_SECRET_KEY"


def secret_keys_from_environment() -> list[str]:
    """The comma-separated secrets of ``TIPSESSIONS_SECRET_KEY``, newest first."""
    keys = [key.strip() for key in os.environ.get(SECRET_VARIABLE, "").split(",")]
    keys = [key for key in keys if key]
    if not keys:
        raise ConfigError(
            SECRET_VARIABLE,
            "is not set: export it with one secret, or several separated by "
            "commas (newest first) to rotate keys; python -m tipsessions keygen "
            "prints a fresh secret",
        )
    return keys


config = {
    "tipsessions": {
        "secret_key": secret_keys_from_environment(),
        # The data stays on the client but encrypted: users cannot read what
        # the application keeps about them. Use "redis" instead to be able to
        # end a session on the server (see the security notes).
        "default_backend": "encryptedcookie",
        # The __Host- prefix makes browsers refuse the cookie unless it is
        # Secure, has Path=/ and no Domain: no subdomain can plant or read it.
        "cookie_name": "__Host-session",
        "cookie_args": {
            "secure": True,
            "httponly": True,
            "samesite": "Lax",
            "path": "/",
            "domain": None,
        },
        # Signed out after two idle hours, and after twelve hours whatever
        # the activity, so a stolen cookie is worth a working day at most.
        "session_max_age": 2 * 3600,
        "session_absolute_max_age": 12 * 3600,
        "on_backend_error": "raise",
    }
}
