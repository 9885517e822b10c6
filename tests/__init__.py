"""Hypercare's tests, a package so that pytest puts the repository root on ``sys.path`` (never ``tests/``,
whose folders are named like the packages they test) and helpers import one way: ``from tests.x import``."""
