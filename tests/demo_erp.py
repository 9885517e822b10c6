"""Throwaway demo ERPs for tests. The ``demo_erp`` fixture (``tests/conftest.py``) builds one in a temporary
folder of its own per call; these helpers point Hypercare's settings at it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

if TYPE_CHECKING:
    from hypercare.demo.builder import DemoErp


class DemoErpFactory(Protocol):
    def __call__(self, name: str = "erp", /, **options: Any) -> DemoErp:
        """A new demo ERP in a new temporary folder named after ``name``; ``options`` go to
        ``build_demo_erp`` (``scale=0.05, faults=[], seed=7, as_of=..., erp_url=...``)."""
        ...


def sources_of(demo: DemoErp) -> dict[str, dict[str, str]]:
    """The ``sources`` settings of a demo ERP: the ERP and its finance system."""
    return {"erp": {"url": demo.erp_url}, "finance": {"url": demo.finance_url}}


def write_config(folder: Path, **settings: Any) -> Path:
    """``folder/hypercare.yaml`` holding ``settings``, for ``hypercare --config``; its path."""
    path = folder / "hypercare.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path
