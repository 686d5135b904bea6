"""The base of the errors a user can fix (a wrong path, a damaged file, a bad box): what they say is enough.

`mlkd` turns any of them that a command does not handle itself into one line, `ERROR mlkd: MESSAGE`, and
exit status 2 (mlkd_model/cli.py): no traceback for a mistake the message already explains.
Each is also a ValueError or RuntimeError, as before, so existing `except` clauses keep working.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or files; the message names the file or value and what is wrong."""
