"""config.json and lean.json are committed exactly as the lean CLI (PyPI `lean` 1.0.230) writes them, so its
rewrites change nothing but the keys it adds; the engine image is pinned.

How the CLI writes them: lean/components/config/storage.py Storage._save writes a project's config.json as
`json.dumps(data, indent=4) + "\\n"`; lean/components/config/lean_config_manager.py set_properties writes
lean.json as `json.dumps(config, indent=4)` (no newline). lean/container.py manage_docker_image takes the
engine image from config.json's "engine-image" when no --image is given."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_config_json_is_byte_for_byte_what_the_cli_writes() -> None:
    text = (ROOT / "config.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=4) + "\n"


def test_lean_json_is_byte_for_byte_what_the_cli_writes() -> None:
    text = (ROOT / "lean.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=4)


def test_the_engine_image_is_pinned_to_a_lean_release() -> None:
    config = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"quantconnect/lean:\d+", config["engine-image"]), config.get("engine-image")


def test_the_cli_ids_are_not_committed_and_readme_names_them() -> None:
    config = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
    assert not {"local-id", "cloud-id"} & set(config)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for added in ("local-id", "cloud-id", "file-database-last-update"):
        assert added in readme


def test_readme_has_the_data_recipe_for_the_default_window() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    config = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))["parameters"]
    start, end = (config[key].replace("-", "") for key in ("start-date", "end-date"))
    commands = re.findall(r"^lean data download .+$", readme, re.MULTILINE)
    assert any('"US Equity Options"' in c and f'--start "{start}"' in c and f'--end "{end}"' in c for c in commands)
    assert any('"US Equities"' in c and '--ticker "SPY"' in c for c in commands)
