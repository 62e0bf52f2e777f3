"""Offline checks of deploy/ that no external tool covers (`make lint` runs them; the metrics
test reuses the query parsing).

    python -m streaming_rec_dev.deploy_check

- every PromQL expression of the Grafana dashboard and of the alert rules parses
  (``promql-parser``, the Rust parser of GreptimeDB's PromQL engine, from PyPI);
- the dashboard is a Grafana dashboard we can provision: unique panel ids, a grid
  position per panel, every target on the ``${datasource}`` variable;
- the Kubernetes PrometheusRule holds exactly the groups of deploy/prometheus/alerts.yml;
- the jobs the queries name are the jobs Prometheus scrapes (Compose) and the Services
  the ServiceMonitor selects (Kubernetes);
- the kustomizations name files that exist and objects their bases build.

``--write-rule`` copies the groups of alerts.yml into the PrometheusRule.

The names and labels the queries use are checked against a real worker's and trainer's
``/metrics`` by tests/integration/test_deploy_metrics.py.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "streaming-rec.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "compose" / "prometheus.yml"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
PROMETHEUS_RULE = K8S_BASE / "prometheusrule.yaml"

# Grafana's range variables, replaced by a fixed range before parsing
GRAFANA_RANGES = ("$__rate_interval", "$__interval", "$__range")
# labels Prometheus adds to every scraped series (not in /metrics)
TARGET_LABELS = frozenset({"job", "instance"})
# series Prometheus makes itself, not exported by us
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


@dataclass
class Query:
    """One PromQL expression and where it comes from ("dashboard: Answers/s", ...)."""

    where: str
    expr: str
    metrics: dict[str, set[str]] = field(default_factory=dict)  # name → labels it matches on
    grouping: set[str] = field(default_factory=set)  # labels of by (...) clauses

    def parse(self) -> None:
        """Parse ``expr`` (ValueError naming ``where`` if it does not) and collect the
        metric names, their matcher labels and the grouping labels."""
        try:
            tree = promql_parser.parse(self.expr)
        except ValueError as exc:
            raise ValueError(f"{self.where}: {exc}: {self.expr}") from None

        def visit(node: Any) -> None:
            if isinstance(node, promql_parser.VectorSelector) and node.name:
                labels = {m.name for m in node.matchers.matchers if m.name != "__name__"}
                self.metrics.setdefault(node.name, set()).update(labels)
            modifier = getattr(node, "modifier", None)
            if (
                isinstance(node, promql_parser.AggregateExpr)
                and modifier is not None
                and modifier.type == promql_parser.AggModifierType.By
            ):
                self.grouping.update(modifier.labels)

        promql_parser.walk(tree, visit)

    @property
    def our_metrics(self) -> dict[str, set[str]]:
        """The metrics the process exports (not Prometheus's own ``up``), with the labels
        the query names (target labels left out)."""
        return {
            name: labels - TARGET_LABELS
            for name, labels in self.metrics.items()
            if name not in SYNTHETIC
        }

    @property
    def jobs(self) -> set[str]:
        """Job names this query selects on with ``job="..."`` (regex matchers left out)."""
        return set(re.findall(r'job="([^"]+)"', self.expr))


def dashboard_queries(path: Path = DASHBOARD) -> list[Query]:
    """Every target expression of the dashboard, Grafana's range variables made ``5m``."""
    queries = []
    for panel in _panels(json.loads(path.read_text())):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable in GRAFANA_RANGES:
                expr = expr.replace(variable, "5m")
            queries.append(Query(f"dashboard: {panel['title']} ({target['refId']})", expr))
    return queries


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    """The rules of every group of a Prometheus rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_queries(path: Path = ALERTS) -> list[Query]:
    return [Query(f"alert: {rule['alert']}", rule["expr"]) for rule in alert_rules(path)]


def all_queries() -> list[Query]:
    """Dashboard and alert expressions, parsed."""
    queries = dashboard_queries() + alert_queries()
    for query in queries:
        query.parse()
    return queries


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def check_dashboard(path: Path = DASHBOARD) -> list[str]:
    """Problems of the dashboard's structure (empty: none)."""
    dashboard = json.loads(path.read_text())
    problems = []
    ids = [p["id"] for p in _panels(dashboard)]
    if len(ids) != len(set(ids)):
        problems.append(f"{path.name}: panel ids repeat: {sorted(ids)}")
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        problems.append(f"{path.name}: no datasource variable")
    for panel in _panels(dashboard):
        if not {"x", "y", "w", "h"} <= set(panel.get("gridPos", {})):
            problems.append(f"{path.name}: panel {panel['title']!r} has no grid position")
        if panel["type"] == "row":
            continue
        if not panel.get("targets"):
            problems.append(f"{path.name}: panel {panel['title']!r} has no query")
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{path.name}: {panel['title']!r} not on ${{datasource}}")
    return problems


def check_rule_copies() -> list[str]:
    """The PrometheusRule's groups are those of alerts.yml."""
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    mine = yaml.safe_load(ALERTS.read_text())["groups"]
    if rule["spec"]["groups"] != mine:
        return [
            f"{PROMETHEUS_RULE.relative_to(ROOT)}: spec.groups differ from "
            f"{ALERTS.relative_to(ROOT)} (copy them over)"
        ]
    return []


def check_jobs(queries: list[Query]) -> list[str]:
    """Each job a query names is scraped by Compose's Prometheus and is a Service of the
    Kubernetes base (the ServiceMonitor's job label is the Service name)."""
    scraped = {job["job_name"] for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    services = set()
    for manifest in sorted(K8S_BASE.glob("*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc.get("kind") == "Service":
                services.add(doc["metadata"]["name"])
    problems = []
    for query in queries:
        for job in sorted(query.jobs):
            if job not in scraped:
                problems.append(f"{query.where}: job {job!r} is not scraped in prometheus.yml")
            if job not in services:
                problems.append(f"{query.where}: job {job!r} is no Service in deploy/k8s/base")
    return problems


def check_kustomizations(root: Path = ROOT / "deploy" / "k8s") -> list[str]:
    """What `kustomize build` would trip on first, without kustomize (not on PyPI): every
    file a kustomization names exists, and every object its ``replicas`` and patch files
    name is in the resources it builds on. (The patches are not applied here.)"""
    problems = []
    for kustomization in sorted(root.rglob("kustomization.yaml")):
        spec = yaml.safe_load(kustomization.read_text())
        here = kustomization.parent
        objects: set[tuple[str, str]] = set()
        for resource in spec.get("resources", []):
            path = here / resource
            if not path.exists():
                problems.append(f"{kustomization.relative_to(ROOT)}: no {resource}")
            files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
            for file in (f for f in files if f.exists() and f.name != "kustomization.yaml"):
                for doc in yaml.safe_load_all(file.read_text()):
                    if doc:
                        objects.add((doc["kind"], doc["metadata"]["name"]))
        names = {name for _, name in objects}
        for replica in spec.get("replicas", []):
            if replica["name"] not in names:
                problems.append(f"{kustomization.relative_to(ROOT)}: no {replica['name']}")
        for patch in spec.get("patches", []):
            if "path" not in patch:
                continue
            doc = yaml.safe_load((here / patch["path"]).read_text())
            if (doc["kind"], doc["metadata"]["name"]) not in objects:
                problems.append(
                    f"{kustomization.relative_to(ROOT)}: {patch['path']} patches "
                    f"{doc['kind']}/{doc['metadata']['name']}, which it does not build"
                )
    return problems


def write_rule_copy() -> None:
    """Copy the groups of alerts.yml into the PrometheusRule (after editing alerts.yml)."""
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    rule["spec"]["groups"] = yaml.safe_load(ALERTS.read_text())["groups"]
    head = "".join(
        line for line in PROMETHEUS_RULE.read_text().splitlines(True) if line.startswith("#")
    )
    PROMETHEUS_RULE.write_text(head + yaml.safe_dump(rule, sort_keys=False, width=100))


def main() -> int:
    if sys.argv[1:] == ["--write-rule"]:
        write_rule_copy()
        return 0
    try:
        queries = all_queries()
    except ValueError as exc:
        print(f"deploy check: {exc}", file=sys.stderr)
        return 1
    problems = (
        check_dashboard() + check_rule_copies() + check_jobs(queries) + check_kustomizations()
    )
    for problem in problems:
        print(f"deploy check: {problem}", file=sys.stderr)
    if not problems:
        print(
            f"deploy check: {len(queries)} PromQL expressions parse "
            f"({len(dashboard_queries())} dashboard, {len(alert_rules())} alerts); "
            "dashboard, rule copies, jobs and kustomizations consistent"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
