"""``accelkit bench webnn`` runs end to end and reports what it promises (no timing is asserted)."""

from __future__ import annotations

import json

from accelkit import cli
from accelkit.bench import webnn as bench


def test_bench_webnn_reports_every_way(tmp_path, capsys):
    out = tmp_path / "webnn.json"
    assert (
        cli.main(["bench", "webnn", "--device", "cpu", "--iterations", "3", "--json", str(out), "--quiet"])
        == 0
    )
    result = json.loads(out.read_text())
    assert result["benchmark"] == "webnn" and result["device"] == "cpu" and result["iterations"] == 3
    assert result["equal_outputs"] is True
    assert [r["way"] for r in result["results"]] == [
        "webnn dispatch",
        "eager layer call",
        "compiled layer replay",
        "graph.run (same steps)",
    ]
    assert result["results"][0]["execution"] == "eager (cpu runs compiled calls eagerly)"
    assert all(r["host_us"] > 0 and r["synced_us"] >= r["host_us"] for r in result["results"])
    assert all(r["thread_cpu_us"] >= 0 and r["gpu_dispatches"] is None for r in result["results"])
    assert "matmul+add+gelu" in result["graph_steps"] and "add+layer_normalization" in result["graph_steps"]
    assert "matmul+add x3 (one input)" in result["graph_steps"]  # q, k, v as one matmul
    assert "attention+transpose" in result["graph_steps"]  # heads written straight into (B, T, H, D)
    assert "host us/call" in capsys.readouterr().out
    assert set(result["verdict"]) == {"host_ratio", "thread_cpu_ratio", "gpu_dispatches"}
    assert result["verdict"]["host_ratio"] == round(
        result["results"][0]["host_us"] / result["results"][2]["host_us"], 3
    )
    table = bench.table(result)
    assert table.count("\n") == 6
    assert "WebNN dispatch / compiled layer replay: " in table and "x host time per call" in table
