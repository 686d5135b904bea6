"""Tracker families. A new family is one module here that subclasses `Family` and applies `@register`,
plus its import below; see docs/architecture.md."""

from mlkd_model.families import nanotrack, siamrpn_alex  # noqa: F401  (the built-ins register on import)
from mlkd_model.families.registry import Family, family_names, get_family, register

__all__ = ["Family", "family_names", "get_family", "register"]
