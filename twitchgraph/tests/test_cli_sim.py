"""`twitchgraph sim serve`: prints what to export, writes truth files, refuses bad faults."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from twitchgraph.cli import app


def test_sim_serve_prints_env_and_writes_truth(tmp_path):
    truth, bots, env_file = tmp_path / "truth.json", tmp_path / "bots.csv", tmp_path / "sim.env"
    result = CliRunner().invoke(app, [
        "sim", "serve", "--channels", "30", "--users", "300", "--seed", "2", "--for", "0.2",
        "--ground-truth", str(truth), "--bot-list", str(bots), "--env-file", str(env_file),
        "--faults", "slow,loop_cursor",
    ])
    assert result.exit_code == 0, result.output
    assert "export TWITCH_API_URL=http://127.0.0.1:" in result.output
    assert "export TWITCH_CHAT_TLS=0" in result.output
    assert "faults: slow, loop_cursor" in result.output
    data = json.loads(truth.read_text())
    assert len(data["communities"]) == 30 and data["bots"]
    with bots.open() as f:
        rows = list(csv.DictReader(f))
    assert {"nightbot", "commanderroot"} <= {r["login"] for r in rows}
    assert "TWITCH_CLIENT_SECRET=" in env_file.read_text()


def test_sim_serve_rejects_unknown_fault():
    result = CliRunner().invoke(app, ["sim", "serve", "--faults", "gremlins", "--for", "0"])
    assert result.exit_code == 1
    assert "unknown fault(s) gremlins" in result.output
    assert "Traceback" not in result.output
