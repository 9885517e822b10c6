"""The bottom layer every part builds on: the store's declarative base and column types, errors, engine
and session scope, the schema-currency gate, settings building blocks and the domain vocabulary.

Nothing here imports a part (``monitor``, ``anomaly``, ``tickets``, ``runbooks``, ``dashboards``) or the
wiring (``hypercare``); ``tests/test_architecture.py`` fails if something does.
"""
