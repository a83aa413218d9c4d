"""The one error type of bag reading and writing, so tools catch it and print one line instead of a traceback."""

from __future__ import annotations


class BagError(Exception):
    """A bag that cannot be read or written as asked; the message names the bag and the topic or message."""
