"""Every test runs in ENVIRONMENT=development unless it says otherwise: the services default to production,
which refuses the development secret the tests sign their tokens with (tests of production pass it explicitly)."""

import os

os.environ["ENVIRONMENT"] = "development"
