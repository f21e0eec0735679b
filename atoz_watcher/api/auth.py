"""``Authorization: ODFHIR <DeveloperKey>/<CustomerKey>``, checked in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from atoz_watcher.config.sections import ApiKey

SCHEME = b"odfhir"
MISSING = "Authorization header is missing"
MALFORMED = "Authorization header must be: ODFHIR <DeveloperKey>/<CustomerKey>"
WRONG = "Invalid DeveloperKey or CustomerKey"


class KeyChecker:
    """Knows the configured key pairs; says why a header is refused, or None."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._pairs = tuple(
            (
                key.developer_key.get_secret_value().encode(),
                key.customer_key.get_secret_value().encode(),
            )
            for key in keys
        )

    def refuse(self, header: bytes | None) -> str | None:
        """Why ``header`` (the raw Authorization value) is refused; None when it is good."""
        if header is None:
            return MISSING
        scheme, _, credentials = header.strip().partition(b" ")
        developer, slash, customer = credentials.strip().partition(b"/")
        if scheme.lower() != SCHEME or not slash or not developer or not customer:
            return MALFORMED
        # Every pair is compared, each in constant time: the answer's timing tells nothing
        # about which key, or how much of one, was right.
        matched = False
        for dev_key, cust_key in self._pairs:
            matched |= hmac.compare_digest(developer, dev_key) & hmac.compare_digest(
                customer, cust_key
            )
        return None if matched else WRONG
