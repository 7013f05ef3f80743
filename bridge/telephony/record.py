"""The web phone's own call id, as the call and the page both check it.

The call's record itself is `bridge.records.CallRecord`: storage and the web read it too, and
they sit beside telephony, not above it.
"""

from __future__ import annotations

import re

# The web phone's own call id (caller-chosen, so only ever used as a lookup key).
CLIENT_SESSION = re.compile(r"[A-Za-z0-9-]{16,64}")
