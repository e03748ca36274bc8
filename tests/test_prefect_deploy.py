import subprocess
import sys
from pathlib import Path

import httpx

from tests.prefect_server import prefect_server

ROOT = Path(__file__).resolve().parents[1]


def test_prefect_deploy_accepts_prefect_yaml(tmp_path):
    with prefect_server(tmp_path / "prefect") as (url, env):
        prefect = [sys.executable, "-m", "prefect"]
        subprocess.run(prefect + ["work-pool", "create", "grm-process", "--type", "process"], env=env, cwd=ROOT,
                       check=True, capture_output=True, timeout=120)
        r = subprocess.run(prefect + ["--no-prompt", "deploy", "--all"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        deployments = httpx.post(f"{url}/deployments/filter", json={}).json()
        by_name = {d["name"]: d for d in deployments}
        assert set(by_name) == {"weekly-retrain", "evaluate"}
        weekly = by_name["weekly-retrain"]
        assert weekly["work_pool_name"] == "grm-process"
        assert weekly["parameters"] == {"config": "configs/tiny.yaml", "store": "store"}
        assert [s["schedule"]["cron"] for s in weekly["schedules"]] == ["0 3 * * 1"]
        flows = {f["id"]: f["name"] for f in httpx.post(f"{url}/flows/filter", json={}).json()}
        # one flow; a group is a parameter of it
        assert flows[by_name["evaluate"]["flow_id"]] == flows[weekly["flow_id"]] == "spct-pipeline"
        assert by_name["evaluate"]["parameters"]["only"] == ["evaluation"]


def test_a_run_shows_its_stage_artifacts_through_the_api(tmp_path):
    """With PREFECT_API_URL set, `grm run` reports to that server; the stage's summary and progress
    artifacts can be read back through the API."""
    with prefect_server(tmp_path / "prefect") as (url, env):
        cmd = [sys.executable, "-m", "flows.cli", "run", "--config", "configs/tiny.yaml", "--store", str(tmp_path / "s"),
               "--only", "curate", "--set", "data.miniworld.train_items=20", "--set", "data.miniworld.eval_items=10"]
        r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        artifacts = httpx.post(f"{url}/artifacts/filter", json={}).json()
        by_key = {a["key"]: a for a in artifacts if a.get("key")}
        assert "curate-summary" in by_key and "curate-progress" in by_key
        summary = by_key["curate-summary"]
        assert summary["type"] == "markdown" and "items" in summary["data"].lower()
        runs = httpx.post(f"{url}/flow_runs/filter", json={}).json()
        assert [fr["state"]["type"] for fr in runs] == ["COMPLETED"]
        assert summary["flow_run_id"] == runs[0]["id"]
