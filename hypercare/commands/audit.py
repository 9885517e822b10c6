"""``hypercare audit``: verify the audit trail's chains, write checkpoints, rotate the audit key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hypercare.commands.common import console, err_console, state

audit_app = typer.Typer(no_args_is_help=True, help="The ticket audit trail.")

CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="A checkpoint file to check the store against (default: tickets.audit_checkpoint_file or "
        "<data_dir>/audit-checkpoints.jsonl, when it exists).",
    ),
]


@audit_app.command("verify")
def verify(checkpoint: CheckpointOption = None) -> None:
    """Recompute the audit trail's chains and seals and check the checkpoints; exit 1 naming the first
    broken place (ticket, row, seq, what is wrong)."""
    from core.session import make_engine, session_factory
    from tickets.audit import verify as verify_chain
    from tickets.audit_keys import checkpoint_path, keyring_for

    settings = state.settings()
    keyring = keyring_for(settings, generate=False)
    if checkpoint is None and checkpoint_path(settings).exists():
        checkpoint = checkpoint_path(settings)
    if checkpoint is not None and not checkpoint.exists():
        err_console.print(f"no checkpoint file {checkpoint}")
        raise typer.Exit(2)
    engine = make_engine(settings.store_url)
    try:
        with session_factory(engine)() as session:
            report = verify_chain(session, keyring, checkpoints=checkpoint)
    finally:
        engine.dispose()
    first = report.first
    if first is None:
        extra = []
        if report.legacy:
            extra.append(
                f"{report.legacy} legacy, unkeyed rows (plain sha256, written before migration 0013)"
            )
        if report.unchained:
            extra.append(f"{report.unchained} older unchained rows")
        if report.unsealed:
            extra.append(f"{report.unsealed} rows not sealed yet")
        keys = ", ".join(report.keys) or "none yet"
        shown = f" ({'; '.join(extra)})" if extra else ""
        console.print(
            f"audit chain intact: {report.checked} rows verified{shown}; {report.sealed} seals, keys: {keys}"
        )
        if checkpoint is not None:
            console.print(f"{report.checkpoints} checkpoints of {checkpoint} hold")
        return
    more = f"; {len(report.findings) - 1} more findings" if len(report.findings) > 1 else ""
    err_console.print(
        f"audit chain BROKEN at {first.where()}: {first.reason} ({report.checked} rows checked{more})",
        soft_wrap=True,
    )
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint(
    file: Annotated[Path | None, typer.Option("--file", help="Append to this file instead.")] = None,
) -> None:
    """Append a signed checkpoint of the audit trail (last seq, its MAC, row count, time, key id) to the
    checkpoint file and the log. Keep the file out of reach of the store's owners (docs/security.md)."""
    from core.session import make_engine, session_factory
    from tickets.audit_checkpoints import write
    from tickets.audit_keys import checkpoint_path, keyring_for

    settings = state.settings()
    keyring = keyring_for(settings)
    path = file or checkpoint_path(settings)
    engine = make_engine(settings.store_url)
    try:
        point = write(session_factory(engine), keyring, path)
    finally:
        engine.dispose()
    console.print(
        f"checkpoint at seq {point['seq']} ({point['rows']} rows, key {point['kid']}) appended to {path}"
    )


@audit_app.command("rotate-key")
def rotate_key() -> None:
    """Add a new audit key to the keyring file; new rows use it, older keys stay to verify older rows."""
    from tickets.audit_keys import key_path, keyring_for, rotate

    settings = state.settings()
    if settings.audit_key is not None:
        err_console.print(
            "the audit keyring comes from HYPERCARE_AUDIT_KEY: add a 'kid:base64key' entry there yourself "
            "(`openssl rand -base64 32` makes a key), keeping the older ones"
        )
        raise typer.Exit(2)
    keyring_for(settings)  # generates the first key if there is none yet
    path = key_path(settings.data_dir, settings.tickets.audit_key_file)
    kid = rotate(path)
    console.print(
        f"added audit key '{kid}' to {path}; restart `hypercare serve` and other writers to use it, "
        "and back the file up again"
    )
