"""The registry's service layer: queries and authorisation decisions made in one place.

Routers, web pages and the admin CLI call these functions with a session and get typed
answers back, so a rule (who may read a blob, who may manage a token, which log entry a
caller may see) is written once.
"""

from __future__ import annotations

__all__: list[str] = []
