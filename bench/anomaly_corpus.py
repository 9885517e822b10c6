"""Build the development corpus of REAL labelled operational series from fetched git mirrors.

    .venv/bin/python bench/anomaly_corpus.py \\
        --cloud-monitoring /work/.mirror/microsoft+cloud-monitoring-dataset/repo \\
        --donut /work/.mirror/NetManAIOps+donut/repo/.git \\
        [--out bench/.corpus]

The data is not committed (licences, size): this is the recipe. Each argument is the git directory of a
mirror of a public repository (a bare repository or a work tree's ``.git``); the files are read from its
``HEAD`` with ``git show`` and written as ``timestamp,value,label`` CSVs (Unix seconds, the value as
published, label 1 on points the publishers marked anomalous) under ``OUT/<source>/<name>.csv``, plus
``OUT/manifest.json`` naming each repository and the exact commit read, so a result can be traced back.

Sources (both labelled by the people who run the systems, not by us):

* ``ms-cloud`` - microsoft/cloud-monitoring-dataset (MIT): 60 series of Microsoft production telemetry
  (crash rates, purchase counts, ingress, API latency and request rates, MongoDB query rates), hourly or
  per minute, labelled by domain experts.
* ``donut`` - NetManAIOps/donut ``sample_data`` (MIT): 3 KPIs of a large internet company (a CPU and two
  network-out curves), 5-minute samples with gaps, labelled by its operators.

numenta/NAB and any copy of it are deliberately not used: NAB is the held-out benchmark.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

DEFAULT_OUT = Path(__file__).resolve().parent / ".corpus"


@dataclass(frozen=True)
class Source:
    name: str
    repository: str
    folder: str
    """Folder inside the repository holding the CSVs."""
    columns: tuple[str, str, str]
    """The file's timestamp, value and label column names."""


SOURCES = {
    "cloud_monitoring": Source(
        "ms-cloud", "microsoft/cloud-monitoring-dataset", "data", ("TimeStamp", "Value", "Label")
    ),
    "donut": Source("donut", "NetManAIOps/donut", "sample_data", ("timestamp", "value", "label")),
}


def git(git_dir: Path, *args: str) -> str:
    command = ["git", f"--git-dir={git_dir}", *args]  # the git on PATH, on a mirror the user names
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)  # noqa: S603
    return done.stdout


def present(git_dir: Path, path: str) -> bool:
    """Whether the mirror holds the file's blob (a snapshot may list its largest files without them)."""
    command = ["git", f"--git-dir={git_dir}", "cat-file", "-e", f"HEAD:{path}"]
    done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603 - as in git()
    return done.returncode == 0


def unix_seconds(text: str) -> int:
    """Unix seconds of a published timestamp: already a number, or ISO 8601 (no zone means UTC)."""
    text = text.strip().strip('"')
    try:
        return int(float(text))
    except ValueError:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp())


def convert(text: str, columns: tuple[str, str, str]) -> list[tuple[int, str, int]]:
    reader = csv.DictReader(io.StringIO(text))
    t_col, v_col, l_col = columns
    rows = []
    for row in reader:
        if not row[v_col].strip():  # a missing sample is a gap in the series, as a scraper would see it
            continue
        rows.append((unix_seconds(row[t_col]), row[v_col].strip(), 1 if float(row[l_col]) > 0 else 0))
    return rows


def build(mirrors: dict[str, Path], out: Path) -> dict[str, object]:
    manifest: dict[str, object] = {"built_at": datetime.now(UTC).isoformat(), "sources": {}}
    plan: list[tuple[Source, Path, str]] = []
    for key, git_dir in mirrors.items():
        source = SOURCES[key]
        commit = git(git_dir, "rev-parse", "HEAD").strip()
        listing = git(git_dir, "ls-tree", "-r", "--name-only", "HEAD", source.folder).splitlines()
        names: list[str] = []
        absent: list[str] = []
        for path in (p for p in listing if p.endswith(".csv")):
            (names if present(git_dir, path) else absent).append(path)
        manifest["sources"][source.name] = {  # type: ignore[index]
            "repository": source.repository,
            "commit": commit,
            "files": len(names),
            "absent_from_mirror": absent,
        }
        plan.extend((source, git_dir, name) for name in names)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as bar:
        task = bar.add_task("converting series", total=len(plan))
        for source, git_dir, name in plan:
            rows = convert(git(git_dir, "show", f"HEAD:{name}"), source.columns)
            target = out / source.name / Path(name).with_suffix(".csv").name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(("timestamp", "value", "label"))
                writer.writerows(rows)
            bar.update(task, advance=1, description=f"{source.name}/{target.name}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cloud-monitoring", type=Path, help="git dir of microsoft/cloud-monitoring-dataset")
    parser.add_argument("--donut", type=Path, help="git dir of NetManAIOps/donut")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    mirrors = {k: v for k, v in (("cloud_monitoring", args.cloud_monitoring), ("donut", args.donut)) if v}
    if not mirrors:
        parser.error("give at least one mirror (--cloud-monitoring, --donut)")
    manifest = build(mirrors, args.out)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
