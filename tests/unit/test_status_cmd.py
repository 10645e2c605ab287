"""skiff status, the pure parts: problems first (failing before pending), one row per
service with its replicas, health and rollout."""

from __future__ import annotations

from skiff.cli.status_cmd import problems, service_row


def task(name: str, state: str, *, desired: str = "running", health: str | None = None,
         message: str = "", restarts: int = 0) -> dict:
    return {"metadata": {"name": name, "app": "shop"},
            "spec": {"desiredState": desired, "service": name.split(".")[0]},
            "status": {"state": state, "health": health, "message": message,
                       "restarts": restarts}}


def test_problems_put_failures_before_pending_and_skip_what_is_fine() -> None:
    tasks = [task("web.1.a", "pending", message="0/3 nodes available: 3 insufficient memory"),
             task("web.2.b", "running", health="healthy"),
             task("db.1.c", "failed", message="exited with code 1"),
             task("db.2.d", "running", health="unhealthy", message=""),
             task("old.1.e", "failed", desired="shutdown")]
    assert problems(tasks) == [
        "shop/db.2.d: running (unhealthy): ",
        "shop/db.1.c: failed: exited with code 1",
        "shop/web.1.a: pending: 0/3 nodes available: 3 insufficient memory"]


def test_a_service_row_counts_running_and_healthy() -> None:
    svc = {"metadata": {"name": "web", "app": "shop"},
           "spec": {"deploy": {"replicas": 3}},
           "status": {"rollout": {"state": "updating", "message": ""}}}
    tasks = [task("web.1.a", "running", health="healthy"),
             task("web.2.b", "running", health="starting"),
             task("web.3.c", "pending")]
    assert service_row(svc, tasks) == ["shop/web", "3", "2", "1", "updating", ""]
    assert service_row(svc, [task("web.1.a", "running")])[3] == "-"  # no check: no count


def test_rollout_progress_and_why_it_is_not_done() -> None:
    from skiff.cli.rollout_cmds import _why_not, progress_line
    from skiff.models.appspec import Deploy, ServiceSpec
    from skiff.models.objects import ObjectMeta, Service
    svc = Service(metadata=ObjectMeta(name="web", app="shop"),
                  spec=ServiceSpec(image="app:2", deploy=Deploy(replicas=3)))
    want = svc.spec.container_hash()

    def t(name: str, state: str, spec_hash: str = want, **status: object) -> dict:
        return {"metadata": {"name": name}, "spec": {"desiredState": "running",
                                                      "specHash": spec_hash},
                "status": {"state": state, **status}}
    tasks = [t("web.1.a", "running"), t("web.2.b", "starting"),
             t("web.3.c", "running", spec_hash="old")]
    line, done = progress_line("shop", "web", svc, tasks)
    assert line == "shop/web: desired 3, updated 2, ready 1, available 2 (starting)"
    assert not done
    assert progress_line("shop", "web", svc, [t(f"web.{i}", "running") for i in (1, 2, 3)])[1]
    why = _why_not([t("web.2.b", "pending", message="0/3 nodes available"),
                    t("web.1.a", "failed", exitCode=1, message="exited with code 1"),
                    t("web.4.d", "running", oomKilled=True, restarts=1, message="x")])
    assert why == ["web.4.d: OOMKilled: x", "web.1.a: exit code 1: exited with code 1",
                   "web.2.b: pending: 0/3 nodes available"]
