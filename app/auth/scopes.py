"""SMART on FHIR system scopes: which resource types a client may read or write.

Both spellings are understood: v1 (`system/Slot.read`, `system/Appointment.write`,
`system/*.*`) and v2 (`system/Slot.rs`, `system/Appointment.cud`, `system/*.cruds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What each FHIR interaction needs, in SMART v2 letters.
READ, SEARCH, CREATE, UPDATE, DELETE = "r", "s", "c", "u", "d"
V1_ACTIONS = {"read": READ + SEARCH, "write": CREATE + UPDATE + DELETE,
              "*": READ + SEARCH + CREATE + UPDATE + DELETE}
SCOPE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<action>read|write|\*|c?r?u?d?s?)$")


@dataclass(frozen=True)
class Scopes:
    """Granted actions per resource type (`*` = every type)."""

    granted: frozenset[tuple[str, str]] = frozenset()  # (resource type or "*", letter)

    @classmethod
    def parse(cls, text: str) -> Scopes:
        """Parse a space-separated scope string; scopes we do not know give no rights."""
        granted: set[tuple[str, str]] = set()
        for token in text.split():
            match = SCOPE.match(token)
            if match is None or not match["action"]:
                continue
            letters = V1_ACTIONS.get(match["action"], match["action"])
            granted.update((match["type"], letter) for letter in letters)
        return cls(frozenset(granted))

    @classmethod
    def everything(cls) -> Scopes:
        return cls.parse("system/*.*")

    def allows(self, resource_type: str, action: str) -> bool:
        return (resource_type, action) in self.granted or ("*", action) in self.granted

    def __str__(self) -> str:
        by_type: dict[str, str] = {}
        for resource_type, letter in sorted(self.granted):
            by_type[resource_type] = by_type.get(resource_type, "") + letter
        order = READ.join(["c", "uds"])  # "cruds"
        return " ".join(f"system/{t}.{''.join(c for c in order if c in letters)}"
                        for t, letters in sorted(by_type.items()))
