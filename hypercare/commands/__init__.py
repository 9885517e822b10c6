"""Sub-commands of the `hypercare` CLI, one module per area; hypercare/cli.py registers them."""
