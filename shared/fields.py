"""Input fields every service's schemas may share."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

# What JavaScript's \s is (Python's is wider: it also strips \x1c-\x1f and \x85), so what a
# client's `pattern` check and `trim()` call whitespace is what the server strips.
WHITESPACE = ("\t\n\x0b\x0c\r \xa0\u1680" + "".join(map(chr, range(0x2000, 0x200b)))
              + "\u2028\u2029\u202f\u205f\u3000\ufeff")
NOT_WHITESPACE = "[^" + "".join(f"\\u{ord(c):04x}" for c in WHITESPACE) + "]"


class Trimmed(fields.String):
    """Up to `max_length` characters as sent, not only whitespace; stored with the
    surrounding whitespace removed. Documented as checked: maxLength, and a pattern that
    asks for one character that is not whitespace (JavaScript's whitespace: what is stripped)."""

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        metadata = {"maxLength": max_length, "pattern": NOT_WHITESPACE,
                    **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.max_length:
            raise ValidationError(f"Longer than {self.max_length} characters.")
        trimmed = text.strip(WHITESPACE)
        if not trimmed:
            raise ValidationError("Must not be empty or only whitespace.")
        return trimmed
