"""Store URLs with their passwords hidden: what logs and error messages may show.

Python's urlsplit and libpq read a URL's user part differently (libpq takes a password with `#`
or `?` in it, urlsplit stops there), so the user part is taken as widely as either reads it:
everything between `://` and the last `@`. A `password=` parameter is hidden too.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

USER_PART = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)@")
PASSWORD_PARAMETER = re.compile(r"(password=)([^&\s]*)", re.IGNORECASE)
# Shorter secrets are not scrubbed out of free text (they would garble every message).
MIN_SCRUBBED = 3


def redacted(url: object) -> object:
    """`url` with any password replaced by `***`."""
    if not isinstance(url, str):
        return url
    masked = USER_PART.sub(lambda m: f"{m[1]}{_user(m[2])}@", url, count=1)
    return PASSWORD_PARAMETER.sub(r"\1***", masked)


def scrubbed(text: str, url: str) -> str:
    """`text` (a library's error message, say) with every form of `url`'s password in it hidden."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _user(user_part: str) -> str:
    user, colon, _ = user_part.partition(":")
    return f"{user}:***" if colon else user_part


def _secrets(url: str) -> set[str]:
    found = set()
    user_part = USER_PART.match(url)
    if user_part:
        _, colon, password = user_part[2].partition(":")
        if colon:
            found |= {password, unquote(password), password.partition("@")[0], unquote(password.partition("@")[0])}
    for value in PASSWORD_PARAMETER.findall(url):
        found |= {value[1], unquote(value[1])}
    return {secret for secret in found if len(secret) >= MIN_SCRUBBED}
