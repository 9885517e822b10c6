"""Building blocks every part's settings model uses: the strict base model, secret handling, shared
validators. The parts' models live in ``<part>/settings.py``; ``hypercare/config.py`` composes them."""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
"""Names users give things (probes, integrations, jobs, criteria): lower case, digits, ``_ . -``."""


class StrictModel(BaseModel):
    """A settings section: unknown keys are an error, values cannot change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def redact_url(url: str) -> str:
    """A database or apprise URL with any password or token replaced by ``***``."""
    try:
        url = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        url = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(?i)((?:token|key|secret|password|pass|apikey)=)[^&]*", r"\1***", url)


def resolve_secret_env(value: Any) -> Any:
    """Replace ``{secret_env: NAME}`` values of a mapping by the environment variable's content."""
    if not isinstance(value, dict):
        return value
    resolved: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and set(item) == {"secret_env"}:
            name = str(item["secret_env"])
            if name not in os.environ:
                raise ValueError(f"header '{key}': environment variable {name} is not set")
            resolved[key] = os.environ[name]
        elif isinstance(item, dict):
            raise ValueError(f"header '{key}': expected a text value or {{secret_env: NAME}}")
        else:
            resolved[key] = item
    return resolved
