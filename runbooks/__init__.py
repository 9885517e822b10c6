"""Runbooks: the Markdown content the product ships (``*.md`` beside this file) and the engine that loads,
lints and renders it (``library``, ``lint``), keeps checklist ticks (``steps``, ``models``) and runs a
runbook's read-only diagnostics and verification (``diagnostics``, ``verification``)."""
