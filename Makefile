.DEFAULT_GOAL := help
.PHONY: help demo test lint fmt install

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install:  ## Create .venv and install Hypercare with its dev tools
	scripts/bootstrap.sh

demo:  ## Build the demo ERP, detect its faults, serve the ticket UI (ARGS=--once to exit)
	scripts/demo.sh $(ARGS)

test:  ## Lint, type-check, check migrations and run the tests (ARGS=tests/monitor for one folder)
	scripts/test.sh $(ARGS)

lint:  ## ruff and mypy only
	scripts/bootstrap.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

fmt:  ## Format and autofix
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
