"""An operator's path through the Prefect UI: deployment -> Run -> Custom run -> fill the form -> Submit,
then watch the run complete. Real browser (Debian's headless Chromium driven by Selenium through Debian's
ChromeDriver), real Prefect server, served deployment, sandbox."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from deployments.local_server import LocalPrefectServer
from kafka_medic.naming import DEPLOYMENT_NAME
from kafka_medic.sandbox.cluster import Sandbox
from tasks.state import cluster_state
from tests.e2e.ui.browser import Page
from tests.prefect_env import Served, save_sandbox_cluster, unique_cluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect]

UI_WAIT_S = 120.0  # a loaded 2-core machine renders the SPA slowly; these are upper bounds, not timings
RUN_WAIT_S = 300.0


def button(text: str) -> str:
    return f"[...document.querySelectorAll('button')].find(b => b.innerText.trim() === {text!r})"


def menu_item(text: str) -> str:
    return f"[...document.querySelectorAll('.p-overflow-menu-item')].find(b => b.innerText.trim() === {text!r})"


def field(label: str) -> str:
    """The text area of the form field labelled ``label`` (the nearest ancestor holding exactly one)."""
    return (
        f"(() => {{ const lab = [...document.querySelectorAll('label')].find(l => l.innerText.trim() === {label!r});"
        " let el = lab; while (el && el.querySelectorAll('textarea').length !== 1) el = el.parentElement;"
        " return el ? el.querySelector('textarea') : null; })()"
    )


def submit(page: Page) -> None:
    """Leave the last field (as a person does before reaching for Submit), then Submit.

    The form commits typed text a moment later (debounced); a Submit in that moment validates the
    old, empty value ("'by' is a required property"). A person then simply clicks Submit again: so
    does this, a bounded number of times.
    """
    page.click(
        "[...document.querySelectorAll('*')].find(e => e.children.length === 0 && e.innerText === 'Parameters')",
        what="the Parameters heading (to leave the field)",
    )  # fmt: skip
    deadline = time.monotonic() + UI_WAIT_S
    while True:
        time.sleep(1.5)
        page.click(button("Submit"), what="Submit")
        try:
            page.wait_js("!location.pathname.endsWith('/run')", timeout_s=20, what="the form to be submitted")
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def _deployment_id(name: str) -> str | None:
    with get_client(sync_client=True) as client:
        try:
            return str(client.read_deployment_by_name(name).id)
        except Exception:
            return None


def test_custom_run_from_the_ui_turns_maintenance_mode_on(
    ui_server: LocalPrefectServer, healthy_sandbox: Sandbox, page: Page, tmp_path: Path
) -> None:
    cluster = unique_cluster("ui")
    save_sandbox_cluster(healthy_sandbox, cluster)
    served = Served(ui_server, tmp_path / "serve.log", "--no-health-checks")
    shot = tmp_path / "prefect-ui-custom-run.png"
    try:
        dep_id = wait_until(
            lambda: served.alive() and _deployment_id(f"maintenance-mode/{DEPLOYMENT_NAME}"),
            timeout_s=300, what="the maintenance-mode deployment served", interval_s=2,
        )  # fmt: skip
        page.navigate(f"{ui_server.url}/deployments/deployment/{dep_id}")
        page.click(button("Run"), what="the deployment's Run button", timeout_s=UI_WAIT_S)
        page.click(menu_item("Custom run"), what="Run > Custom run")
        page.wait_js(f"!!{field('By')}", timeout_s=UI_WAIT_S, what="the custom-run parameter form")
        run_name = page.js("document.querySelector('input.p-text-input__control').value")
        assert run_name, "the form proposes a run name"

        reason = f"kernel upgrade (ui test {cluster})"
        page.type_into(field("cluster"), cluster, what="the cluster field")
        page.type_into(field("Reason (Optional)"), reason, what="the params.reason field")
        page.type_into(field("By"), "browser-test", what="the params.by field")
        for label, value in (("cluster", cluster), ("Reason (Optional)", reason), ("By", "browser-test")):
            # the form's fields commit what was typed a moment later (debounced): wait until they show it
            page.wait_js(f"{field(label)}.value === {value!r}", timeout_s=15, what=f"{label!r} to hold {value!r}")
        submit(page)

        # The run shows up on the deployment page; open it by its name. The list re-renders while the
        # run changes state, so the link is clicked as an element (a mouse click aimed at coordinates
        # measured a moment earlier can land on the neighbouring flow link).
        link = f"[...document.querySelectorAll('a')].find(a => a.innerText.trim() === {run_name!r})"
        page.wait_js(f"!!{link}", timeout_s=UI_WAIT_S, what=f"the new run {run_name!r} listed")
        page.js(f"{link}.click()")
        page.wait_js("location.pathname.includes('/runs/flow-run/')", timeout_s=UI_WAIT_S, what="the flow-run page")
        badge = "(document.querySelector('.state-badge') || {innerText: ''}).innerText.trim()"
        deadline = time.monotonic() + RUN_WAIT_S
        last_reload = time.monotonic()
        while (state := page.js(badge)) != "Completed":
            assert served.alive(), served.log_tail()
            assert state not in ("Failed", "Crashed", "Cancelled"), f"the run ended {state}:\n{served.log_tail()}"
            assert time.monotonic() < deadline, f"the UI shows the run {state!r}, not Completed\n{served.log_tail()}"
            if time.monotonic() - last_reload > 15:  # the page polls by itself; a reload is the belt to its braces
                page.reload()
                last_reload = time.monotonic()
            time.sleep(2)
        page.screenshot(shot)
        print(f"\nscreenshot of the completed run in the Prefect UI: {shot}")

        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name])))
        assert len(runs) == 1 and runs[0].state.is_completed()
        params = runs[0].parameters["params"]
        assert params["reason"] == reason and params["by"] == "browser-test" and params.get("on", True) is True
        state = asyncio.run(cluster_state(cluster).maintenance())
        assert state is not None and state.on and state.reason == reason and state.by == "browser-test"
    except BaseException:
        failed = page.screenshot(tmp_path / "prefect-ui-failure.png")
        print(f"\nscreenshot at the failure: {failed}")
        raise
    finally:
        served.stop()
