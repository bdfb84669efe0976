"""``platebridge-portal`` for operators: list/show/update/delete of companies, communities,
sites, PODs and cameras with ``--json`` (one object), refusals as one line and status 1, and
``audit --changes`` — on SQLite and PostgreSQL (real CLI processes)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.inprocess import app_portal
from tests.support.portal import cli, cli_json, seed_company

pytestmark = pytest.mark.e2e  # real CLI processes (tests/conftest.py guards it)


def refused(db_url: str, *args: str) -> str:
    r = cli(db_url, *args, check=False)
    assert r.returncode == 1, (args, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("platebridge-portal: error: "), r.stderr
    return lines[0]


def test_tenancy_commands(db_url: str) -> None:
    name = f"Op {uuid.uuid4().hex[:8]}"
    company = cli_json(db_url, "company", "create", "--name", name)["company_id"]
    assert name in {c["name"] for c in cli_json(db_url, "company", "list")["companies"]}
    comm = cli_json(db_url, "community", "create", "--company", company, "--name", "North")
    site = cli_json(db_url, "site", "create", "--community", comm["community_id"], "--name", "A")
    shown = cli_json(db_url, "community", "show", "--community", "North", "--company", company)
    assert [s["name"] for s in shown["sites"]] == ["A"]
    r = cli_json(db_url, "site", "update", "--site", site["site_id"], "--name", "Gate")
    assert r["name"] == "Gate" and r["community"] == "North"
    r = cli_json(db_url, "community", "update", "--community", comm["community_id"], "--name", "N")
    assert r["name"] == "N"
    sites = cli_json(db_url, "site", "list", "--company", company)["sites"]
    assert [(s["name"], s["pods"]) for s in sites] == [("Gate", 0)]
    pod = cli_json(db_url, "pod", "create", "--site", site["site_id"], "--pod-id", "op-pod")
    assert "holds 1 POD" in refused(db_url, "site", "delete", "--site", site["site_id"])
    assert "POD" in refused(db_url, "community", "delete", "--community", comm["community_id"])
    assert "POD" in refused(db_url, "company", "delete", "--company", company)
    assert cli_json(db_url, "company", "show", "--company", company)["pods"] == 1

    # The pod: show, rename + move, decommission, enable, delete.
    other = cli_json(db_url, "site", "create", "--community", comm["community_id"], "--name", "B")
    r = cli_json(
        db_url, "pod", "update", "--pod-id", "op-pod", "--company", company,
        "--name", "Op POD", "--site", other["site_id"],
    )  # fmt: skip
    assert (r["name"], r["site"]) == ("Op POD", "B")
    assert "in service" in refused(db_url, "pod", "delete", "--pod-id", "op-pod", "--company", name)
    r = cli_json(db_url, "pod", "decommission", "--pod-id", "op-pod", "--company", company)
    assert r["decommissioned"] and r["active_keys"] == 0
    listed = cli_json(db_url, "pod", "list", "--company", company)["pods"]
    assert [(p["pod_id"], p["decommissioned"]) for p in listed] == [("op-pod", True)]
    r = cli_json(db_url, "pod", "enable", "--pod-id", "op-pod", "--company", company)
    assert r["api_key"].startswith("pbk_") and r["api_key"] in r["config_yaml"]
    assert r["api_key"] != pod["api_key"]
    human = cli(db_url, "pod", "show", "--pod-id", "op-pod", "--company", company).stdout
    assert "decommissioned: False" in human and r["api_key"] not in human
    cli_json(db_url, "pod", "decommission", "--pod-id", "op-pod", "--company", company)
    assert cli_json(db_url, "pod", "delete", "--pod-id", "op-pod", "--company", company)["deleted"]
    assert cli_json(db_url, "community", "delete", "--community", comm["community_id"])["deleted"]

    trail = cli_json(db_url, "audit", "--company", company, "--changes")["changes"]
    actions = [c["action"] for c in trail]
    assert actions[0] == "community.delete" and actions[-1] == "company.create"
    for action in ("site.rename", "pod.move", "pod.rename", "pod.decommission", "pod.reenable"):
        assert action in actions
    assert {c["actor"] for c in trail} == {"operator"}
    text = json.dumps(trail)
    assert pod["api_key"] not in text and r["api_key"] not in text
    assert cli_json(db_url, "company", "delete", "--company", company)["deleted"]
    assert name not in {c["name"] for c in cli_json(db_url, "company", "list")["companies"]}
    assert "not found" in refused(db_url, "company", "show", "--company", company)


def test_camera_commands(db_url: str) -> None:
    t = seed_company(db_url)
    hb = {
        "pod_id": t.pod_id,
        "ip_address": "10.0.0.5",
        "status": "online",
        "cameras": [{"camera_id": c, "name": f"Cam {c}"} for c in ("c1", "c2")],
    }
    with app_portal(db_url) as portal:
        assert (
            portal.client.post("/api/pod/heartbeat", headers=t.pod_auth, json=hb).status_code == 200
        )
        ident = ("--pod-id", t.pod_id, "--company", t.company_id)
        r = cli_json(db_url, "camera", "update", *ident, "--camera", "c1", "--display-name", "Door")
        assert (r["name"], r["reported_name"]) == ("Door", "Cam c1")
        cams = cli_json(db_url, "camera", "list", "--company", t.company_id)["cameras"]
        assert [(c["camera_id"], c["name"]) for c in cams] == [("c1", "Door"), ("c2", "Cam c2")]
        assert "still reported" in refused(db_url, "camera", "delete", *ident, "--camera", "c1")
        hb["cameras"] = hb["cameras"][1:]  # type: ignore[index]
        assert (
            portal.client.post("/api/pod/heartbeat", headers=t.pod_auth, json=hb).status_code == 200
        )
        assert not cli_json(db_url, "camera", "show", *ident, "--camera", "c1")["reported"]
        assert cli_json(db_url, "camera", "delete", *ident, "--camera", "c1")["deleted"]
        assert "not found" in refused(db_url, "camera", "show", *ident, "--camera", "c1")
        r = cli_json(db_url, "camera", "update", *ident, "--camera", "c2", "--display-name", "")
        assert r["display_name"] is None
        user = portal.login(t.email, t.password)
        listed = portal.client.get("/api/cameras", headers=user).json()["cameras"]
        assert [c["id"] for c in listed] == ["c2"]
    trail = cli_json(db_url, "audit", "--company", t.company_id, "--changes")["changes"]
    assert [c["action"] for c in trail] == ["camera.rename", "camera.remove", "camera.rename"]
