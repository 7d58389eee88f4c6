"""Exceptions raised by the XML layer.

All of them subclass ``ValueError`` so callers that only care about "bad input"
can catch one thing; the messages are written for operators, not developers.
"""


class XMLInputError(ValueError):
    """The XML text was refused: unsafe, too large, malformed or the wrong root."""


class XMLValueError(ValueError):
    """A value read from or written to the XML is not of the expected shape."""


class InvalidNameError(ValueError):
    """A guest, volume, pool or network name is not acceptable."""


class InvalidSizeError(ValueError):
    """A size string or number is malformed, negative or absurdly large."""
