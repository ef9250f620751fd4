"""The investigator notebooks run top to bottom (nbclient, this interpreter's kernel) on a small demo world."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["01_triage", "02_cluster_deep_dive", "03_tuning", "04_neo4j"]
KERNEL = "hydrascope-notebook-test"
PORT = os.environ.get("NEO4J_PORT", "7687")
URI = f"bolt://127.0.0.1:{PORT}"
HOSTILE_MARKUP = "<b>x</b>"  # planted in one demo account id; must never reach an HTML output unescaped


def _read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory, demo_world, demo_run):
    """A kernelspec running *this* interpreter, and the env every notebook reads, for the module."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hydrascope tests", "language": "python",
    }), encoding="utf-8")
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(home))
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        mp.setenv("PYTHONPATH", pythonpath)
        mp.setenv("HYDRASCOPE_RUN_DIR", str(demo_run))
        mp.setenv("HYDRASCOPE_WORLD_DIR", str(demo_world))
        mp.delenv("HYDRASCOPE_CLUSTER", raising=False)
        yield {"run": Path(demo_run), "world": Path(demo_world)}


def execute(name: str, probe: str | None = None) -> tuple[nbformat.NotebookNode, dict | None]:
    """Run a notebook top to bottom; ``probe`` is extra code whose last printed line is JSON to return."""
    nb = _read(name)
    if probe:
        nb.cells.append(new_code_cell(probe))
    NotebookClient(nb, kernel_name=KERNEL, timeout=600, allow_errors=False,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    found = None
    if probe:
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
        found = json.loads(text.strip().splitlines()[-1])
        nb.cells.pop()
    return nb, found


def outputs(nb, mime: str) -> list[str]:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if mime in data:
                out.append(data[mime])
            elif mime == "stream" and o.get("output_type") == "stream":
                out.append(o.get("text", ""))
    return out


def assert_safe(nb) -> None:
    for html in outputs(nb, "text/html"):
        assert HOSTILE_MARKUP not in html, "an account-controlled string reached HTML unescaped"


# ---------------------------------------------------------------------------------------------
# what is in git
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs_and_opens_with_what_it_needs(name):
    nb = _read(name)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert "**For:**" in first.source and "**Needs:**" in first.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs are not stripped"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_strip_script_removes_outputs(tmp_path):
    import subprocess

    nb = _read("01_triage")
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="account data\n")]
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    script = [sys.executable, str(REPO / "scripts" / "strip_notebooks.py")]
    assert subprocess.run(script + ["--check", str(path)], capture_output=True).returncode == 1
    assert subprocess.run(script + [str(path)], capture_output=True).returncode == 0
    assert subprocess.run(script + ["--check", str(path)], capture_output=True).returncode == 0
    stripped = nbformat.read(path, as_version=4)
    assert all(c.outputs == [] and c.execution_count is None for c in stripped.cells if c.cell_type == "code")
    assert [c.source for c in stripped.cells] == [c.source for c in _read("01_triage").cells]


def test_readme_lists_every_notebook():
    text = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"{name}.ipynb" in text


# ---------------------------------------------------------------------------------------------
# executed
# ---------------------------------------------------------------------------------------------

def test_01_triage(kernel_env):
    from exporters import RunFolder

    nb, got = execute("01_triage", "import json; print(json.dumps({'ranked': ranked['cluster_id'].tolist(), "
                                   "'scores': ranked['score'].tolist(), 'cluster': CLUSTER_ID, "
                                   "'n_inside': int(len(inside)), 'run': str(run.path)}))")
    run = RunFolder(kernel_env["run"])
    assert got["run"] == str(kernel_env["run"])
    assert got["ranked"] == run.clusters["cluster_id"].tolist()
    assert got["scores"] == sorted(got["scores"], reverse=True)
    assert got["cluster"] == got["ranked"][0]
    members = set(run.cluster(got["cluster"])["members"])
    links = run.links
    assert got["n_inside"] == int((links["account_a"].isin(members) & links["account_b"].isin(members)).sum())
    pngs = outputs(nb, "image/png")
    assert len(pngs) == 1 and len(pngs[0]) > 1000
    text = "".join(outputs(nb, "stream"))
    for reason in run.cluster(got["cluster"])["reasons"]:
        assert reason in text
    assert_safe(nb)


def test_02_cluster_deep_dive(kernel_env):
    from community import shared_evidence
    from exporters import RunFolder

    nb, got = execute("02_cluster_deep_dive", "import json; print(json.dumps({'cluster': CLUSTER_ID, "
                                              "'other': OTHER_ID, 'pairs': [list(p) for p in pairs.index], "
                                              "'n_acc': int(len(acc)), 'n_shared': int(len(shared))}))")
    run = RunFolder(kernel_env["run"])
    flagged = run.clusters.loc[run.clusters["flagged"], "cluster_id"].tolist()
    assert flagged, "the demo run should flag something"
    assert got["cluster"] == flagged[0]
    assert got["other"] != got["cluster"]
    detail = run.cluster(got["cluster"])
    assert got["n_acc"] == detail["n_accounts"]
    assert got["pairs"], "no linked pair shown"
    text = "".join(outputs(nb, "stream"))
    for a, b in got["pairs"]:
        assert f"{a} — {b}" in text
        why = shared_evidence(run.account_identifiers, run.links, a, b)
        assert why["links"], f"{a}–{b} is shown as linked but has no link"
        for link in why["links"]:
            assert f"{link['layer']:<8} weight {link['weight']:.2f}" in text
    assert len(outputs(nb, "image/png")) == 2  # timeline + cluster graph
    if detail["templates"]:
        assert f"template {detail['templates'][0]['template_id']}" in text
    assert_safe(nb)


def test_03_tuning(kernel_env):
    nb, got = execute("03_tuning", "import json; print(json.dumps({"
                                   "'threshold': by_threshold.to_dict('list'), "
                                   "'resolution': by_resolution.to_dict('list'), "
                                   "'ablation': ablation.to_dict('list'), "
                                   "'baseline': {k: baseline[k] for k in ('precision', 'recall', 'n_flagged')}}))")
    th = got["threshold"]
    assert th["threshold"] == sorted(th["threshold"])
    # raising the threshold never flags more accounts, so recall never goes up
    assert th["flagged_accounts"] == sorted(th["flagged_accounts"], reverse=True)
    assert th["recall"] == sorted(th["recall"], reverse=True)
    i = th["threshold"].index(0.5)  # the default: re-thresholding reproduces the run
    assert th["flagged_accounts"][i] == got["baseline"]["n_flagged"]
    assert th["precision"][i] == got["baseline"]["precision"] and th["recall"][i] == got["baseline"]["recall"]
    assert got["baseline"]["recall"] > 0
    assert len(got["resolution"]["resolution"]) == 5
    # finer resolution → at least as many clusters as the coarsest
    assert got["resolution"]["clusters"][-1] >= got["resolution"]["clusters"][0]
    assert got["ablation"]["layers"] == ["all", "without network", "without payment", "without prompt",
                                         "without timing"]
    assert all(0 <= v <= 1 for v in got["ablation"]["recall"])
    assert len(outputs(nb, "image/png")) == 1
    assert_safe(nb)


def _neo4j_reachable() -> None:
    import neo4j

    try:
        with neo4j.GraphDatabase.driver(URI, auth=None, connection_timeout=5) as driver:
            driver.verify_connectivity()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        msg = f"no Neo4j server at {URI} ({type(exc).__name__}); start one with scripts/neo4j start"
        if os.environ.get("HYDRASCOPE_REQUIRE_NEO4J") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.neo4j
def test_04_neo4j(kernel_env):
    from exporters import RunFolder

    _neo4j_reachable()
    # the Neo4j tests empty the database: hold their lock while the notebook exports and queries
    lock = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"hydrascope-neo4j-{PORT}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        nb, got = execute("04_neo4j", "import json; print(json.dumps({'run_id': RUN_ID, "
                                      "'top': top['cluster_id'].tolist() if len(top) else [], "
                                      "'account': ACCOUNT, 'sharing': sharing['account_id'].tolist() "
                                      "if len(sharing) else [], 'templates': int(len(templates))}))")
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    run = RunFolder(kernel_env["run"])
    flagged = run.clusters.loc[run.clusters["flagged"], "cluster_id"].tolist()
    assert got["top"] == flagged[:10]
    assert got["templates"] > 0
    uses = run.account_identifiers
    inst = uses[uses["kind"] == "instrument"]
    mine = set(inst.loc[inst["account_id"] == got["account"], "identifier"])
    expected = sorted(set(inst.loc[inst["identifier"].isin(mine), "account_id"]) - {got["account"]})
    # the query spans every run in the database: at least this run's co-payers, in id order
    assert set(expected) <= set(got["sharing"]) and got["sharing"] == sorted(got["sharing"])
    text = "".join(outputs(nb, "stream"))
    assert f"exported run {got['run_id']}" in text
    assert " hops" in text or "no chain of evidence" in text
    assert_safe(nb)
