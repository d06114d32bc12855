"""Sessions in Google Cloud Datastore (Firestore in Datastore mode).

Durable and managed: nothing to operate, at the price of a network round trip
of a few tens of milliseconds per load and save. Credentials come from the
environment as for any Google Cloud client (Application Default Credentials);
``DATASTORE_EMULATOR_HOST`` points the client at the local emulator instead.

``TIPSESSIONS_DATASTORE_PROJECT`` names the project; left unset, the client
takes it from the environment (``GOOGLE_CLOUD_PROJECT`` or the credentials).
"""

import os

from config.development import config as development

config = {
    "tipsessions": {
        **development["tipsessions"],
        "default_backend": "datastore",
        "session_max_age": 24 * 3600,
        "datastore": {
            "project": os.environ.get("TIPSESSIONS_DATASTORE_PROJECT") or None,
            # A namespace keeps one application's sessions apart from another's
            # in a shared project.
            "namespace": "myapp",
            "kind": "Session",
            "timeout": 5.0,
        },
    }
}
