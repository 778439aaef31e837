"""Enterprises and towns (yujing.alerts.orgs): the registry, routing by level through the
book (enterprise → town → bureau, fake clock), and scopes (console rights). Pure."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.orgs import load_duty, merge, parse_orgs, unregistered
from yujing.alerts.records import Command, Warning
from yujing.alerts.roster import parse_roster
from yujing.alerts.settings import AlertsSettings
from yujing.clock import FakeClock
from yujing.config import load_config
from yujing.console.rights import Rights
from yujing.console.views import _streamed
from yujing.domain import Finding, Grade
from yujing.stations import Registry, Station
from yujing.yamlsrc import SourceError

ROOT = Path(__file__).resolve().parents[2]
T = 1_748_764_800_000   # 2025-06-01 08:00 UTC
MIN = 60_000
DUST = RuleMeta("除尘器温度", "dust")

ROSTER = """
people:
  - {id: ind.a, name: 工贸A, contacts: ["json://ind-a.example/hook"]}
  - {id: ind.b, name: 工贸B, contacts: ["json://ind-b.example/hook"]}
  - {id: boss, name: 带班领导, contacts: ["json://boss.example/hook"]}
  - {id: room.a, name: 值班员, contacts: ["json://room.example/hook"]}
teams:
  - id: industrial
    name: 工贸
    domain: industrial
    rotation: {start: 2025-05-01, slots: [{A: ind.a, B: ind.b, leader: boss}]}
  - id: room
    name: 值班室
    domain: duty_room
    rotation: {start: 2025-05-01, slots: [{A: room.a, B: room.a, leader: boss}]}
"""

ORGS = """
people:
  - {id: e1.safety, name: 甲厂安全员, contacts: ["json://e1s.example/hook"]}
  - {id: e1.b, name: 甲厂副安全员, contacts: ["json://e1b.example/hook"]}
  - {id: e1.boss, name: 甲厂负责人, contacts: ["json://e1p.example/hook"]}
  - {id: e2.safety, name: 乙厂安全员, contacts: ["json://e2s.example/hook"]}
  - {id: ca.reg, name: 长安监管, contacts: ["json://careg.example/hook"]}
  - {id: hj.reg, name: 厚街监管, contacts: ["json://hjreg.example/hook"]}
towns:
  - {name: 长安镇, id: town-ca, regulators: {on_call: [ca.reg]}}
  - {name: 厚街镇, id: town-hj, regulators: {on_call: [hj.reg]}}
enterprises:
  - id: ENT-A
    name: 甲厂
    town: 长安镇
    industry: [粉尘涉爆]
    principal: e1.boss
    safety_manager: e1.b
    duty: {on_call: [e1.safety, e1.b]}
  - id: ENT-B
    name: 乙厂
    town: 厚街镇
    industry: [粉尘涉爆]
    duty: {on_call: [e2.safety]}
"""


def duty():
    return merge(parse_roster(ROSTER), parse_orgs(ORGS))


# -- the registry -------------------------------------------------------------------

def test_the_example_files_load_and_every_example_station_enterprise_is_registered():
    roster = load_duty(ROOT / "roster.yaml", ROOT / "enterprises.yaml")
    from yujing.stations import load_registry
    reg = load_registry(ROOT / "stations.yaml")
    named = {s.enterprise for s in reg.stations.values() if s.enterprise}
    assert named and all(roster.org_team("enterprise", e) for e in named)
    assert unregistered(roster, reg) == []
    assert roster.check(T) == []     # every enterprise and town has an A and a B


@pytest.mark.parametrize("change, where, says", [
    ("town: 长安镇\n    industry", "enterprises[0].town", "unknown town '大岭山镇'"),
    ("on_call: [e1.safety, e1.b]", "enterprises[0]", "unknown person 'nobody'"),
    ("{on_call: [hj.reg]}", "enterprises[0]", "already with town 厚街镇"),
])
def test_a_bad_registry_names_file_line_key_and_the_fix(change, where, says):
    bad = {"town: 长安镇\n    industry": "town: 大岭山镇\n    industry",
           "on_call: [e1.safety, e1.b]": "on_call: [nobody, e1.b]",
           "{on_call: [hj.reg]}": "{on_call: [e1.safety]}"}[change]
    with pytest.raises(SourceError) as exc:
        parse_orgs(ORGS.replace(change, bad), "enterprises.yaml")
    p = next(p for p in exc.value.problems if says in p.message)
    assert p.file == "enterprises.yaml" and p.line > 0 and p.key == where


def test_unknown_keys_and_a_duty_without_people_are_refused_with_the_line():
    with pytest.raises(SourceError) as exc:
        parse_orgs(ORGS.replace("industry: [粉尘涉爆]\n    principal", "industri: [x]\n    principal"),
                   "e.yaml")
    assert "industri" in str(exc.value) and "e.yaml:" in str(exc.value)
    with pytest.raises(SourceError, match="on_call"):
        parse_orgs(ORGS.replace("{on_call: [e2.safety]}", "{}"), "e.yaml")


def test_a_person_in_both_the_roster_and_the_enterprises_file_is_refused():
    with pytest.raises(SourceError, match="a person is in one file"):
        merge(parse_roster(ROSTER), parse_orgs(ORGS.replace("e2.safety", "ind.a")))


def test_stations_naming_an_unregistered_enterprise_are_reported():
    reg = Registry([Station(id="S1", name="x", kind="dust_collector", enterprise="ENT-A"),
                    Station(id="S9", name="y", kind="dust_collector", enterprise="ENT-Z")])
    assert unregistered(duty(), reg) == ["station S9: enterprise 'ENT-Z' is not in the "
                                         "enterprises file"]


def test_config_refuses_enterprises_without_a_roster(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("alerts:\n  enterprises: enterprises.yaml\n")
    with pytest.raises(SourceError, match="needs roster"):
        load_config(cfg)
    cfg.write_text("alerts:\n  roster: r.yaml\n  enterprises: e.yaml\n"
                   "  levels: {orange: {first: [enterprise], ack_timeout: 5m, then: [[twon]]}}\n")
    with pytest.raises(SourceError, match="unknown role 'twon'"):
        load_config(cfg)


# -- routing by level -------------------------------------------------------------------

class Rig:
    def __init__(self, **settings) -> None:
        settings.setdefault("grouping", {"wait": "0s", "interval": "0s"})
        self.book = Book(AlertsSettings(**settings), Store(), duty(),
                         fallback_urls=lambda g: ["json://fallback.example/x"])
        self.clock = FakeClock(T)
        self.lc = Lifecycle()
        self.sent: list = []

    def find(self, grade: Grade, station="D1", town="长安镇", enterprise="ENT-A", meta=DUST):
        f = Finding("dust-temp", station, self.clock.t, grade, False, 95.0, "1m",
                    f"temp = 95 ({grade.label})", False)
        ev = self.lc.apply(f, meta, self.clock.t)
        ev = msgspec.structs.replace(ev, town=town, enterprise=enterprise)
        self.sent += self.book.on_event(0, ev, self.clock.t).dispatch

    def tick(self, ms: int) -> list[tuple[str, tuple[str, ...]]]:
        self.sent.clear()
        self.clock.advance(ms)
        self.sent += self.book.on_tick(0, self.clock.t).dispatch
        return self.who()

    def who(self):
        return sorted((d.person, tuple(d.roles)) for d in self.sent)

    def only(self) -> Warning:
        return next(iter(self.book.store.incidents.values()))


def test_orange_at_an_enterprise_climbs_enterprise_then_town_then_bureau():
    r = Rig()
    r.find(Grade.ORANGE)
    assert r.who() == [("e1.safety", ("enterprise",))]
    assert r.tick(10 * MIN - 1) == []
    assert r.tick(1) == [("ca.reg", ("town",))]
    w = r.only()
    assert w.timeline[-1].reason_zh.startswith("企业值班安全员未在10分钟内确认")
    assert "升级至镇街监管人员" in w.timeline[-1].reason_zh
    assert "镇街监管人员" in r.sent[0].message.text
    assert r.tick(10 * MIN) == [("ind.a", ("bureau",))]     # the bureau's 工贸 team, A
    assert "升级至市局值班员" in r.only().timeline[-1].reason_zh
    assert r.tick(10 * MIN) == [("boss", ("bureau.leader",))]


def test_red_at_an_enterprise_pages_all_three_levels_at_once():
    r = Rig()
    r.find(Grade.RED)
    assert r.who() == [("ca.reg", ("town",)), ("e1.safety", ("enterprise",)),
                       ("ind.a", ("bureau",))]
    assert "按红色预警规程同时通知企业值班安全员、镇街监管人员、市局值班员" in r.sent[0].message.text


def test_an_acknowledgement_by_the_enterprise_stops_the_climb():
    r = Rig()
    r.find(Grade.ORANGE)
    r.book.on_command(0, Command("ack", id="c1", actor="e1.safety", incident=r.only().incident,
                                 at=r.clock.t), r.clock.t)
    assert r.tick(10 * MIN) == [] and r.tick(10 * MIN) == []


def test_a_station_without_an_enterprise_keeps_the_a_b_leader_chain():
    r = Rig()
    r.find(Grade.ORANGE, station="R1", enterprise="", meta=DUST)
    assert r.who() == [("ind.a", ("A",))]
    assert r.tick(10 * MIN) == [("ind.b", ("B",))]


def test_an_unregistered_enterprise_takes_the_bureau_chain():
    r = Rig()
    r.find(Grade.ORANGE, enterprise="ENT-Z")
    assert r.who() == [("ind.a", ("A",))]


def test_levels_are_configurable_per_hazard_with_their_own_waits():
    r = Rig(levels_by_hazard={"dust": {"orange": {
        "first": ["enterprise", "enterprise.B"], "ack_timeout": "10m",
        "then": [["bureau"], ["town"]], "waits": ["3m"]}}})
    r.find(Grade.ORANGE)
    assert r.who() == [("e1.b", ("enterprise.B",)), ("e1.safety", ("enterprise",))]
    assert r.tick(3 * MIN) == [("ind.a", ("bureau",))]
    assert r.tick(9 * MIN) == [] and r.tick(MIN) == [("ca.reg", ("town",))]
    steps = [e.reason_zh for e in r.only().timeline if e.kind == "escalated"]
    assert steps[0].startswith("企业值班安全员、企业B岗安全员未在3分钟内确认")
    assert steps[1].startswith("企业值班安全员、企业B岗安全员、市局值班员未在10分钟内确认")


def test_a_level_nobody_holds_says_so_on_the_timeline():
    orgs = ORGS.replace("{name: 长安镇, id: town-ca, regulators: {on_call: [ca.reg]}}",
                        "{name: 长安镇, id: town-ca, regulators: {shifts: [{start: '2030-01-01 08:00', "
                        "end: '2030-01-02 08:00', A: ca.reg}]}}")
    r = Rig()
    r.book = Book(AlertsSettings(grouping={"wait": "0s", "interval": "0s"}), Store(),
                  merge(parse_roster(ROSTER), parse_orgs(orgs)))
    r.find(Grade.ORANGE)
    r.tick(10 * MIN)
    held = [e for e in r.only().timeline if e.kind == "held"]
    assert held and "无人可通知（镇街监管人员）" in held[-1].reason_zh


# -- scopes -----------------------------------------------------------------------------

def test_scopes_come_from_the_registry():
    r = Rights(duty())
    assert r.scope_of("e1.boss").level == "enterprise"         # the principal, not on duty
    assert r.scope_of("ca.reg").key == "长安镇"
    assert r.scope_of("room.a").level == "bureau"


@pytest.mark.parametrize("person, town, enterprise, ok", [
    ("e1.safety", "长安镇", "ENT-A", True),
    ("e1.safety", "厚街镇", "ENT-B", False),
    ("e1.safety", "长安镇", "", False),       # the town's own stations: not the enterprise's
    ("ca.reg", "长安镇", "ENT-A", True),
    ("ca.reg", "长安镇", "", True),
    ("ca.reg", "厚街镇", "ENT-B", False),
    ("ca.reg", "厚街镇", "ENT-A", True),      # its enterprise's station sits over the border
    ("room.a", "厚街镇", "ENT-B", True),
    ("stranger", "厚街镇", "ENT-B", True),    # not in the registry: the bureau
])
def test_who_may_read_what(person, town, enterprise, ok):
    v = Rights(duty()).may_read(person, town, enterprise)
    assert v.ok is ok
    if not ok:
        assert v.why.startswith("无权查看")


def test_acting_needs_the_scope_and_a_right():
    r = Rights(duty())
    assert r.may_act("e1.safety", "dust", "长安镇", "ENT-A").ok
    assert r.may_act("ca.reg", "dust", "长安镇", "ENT-A").ok
    refused = r.may_act("e1.safety", "dust", "厚街镇", "ENT-B")
    assert not refused.ok and refused.why.startswith("无权查看")
    flood = r.may_act("ca.reg", "rainstorm", "长安镇", "")    # sees it, the bureau handles it
    assert not flood.ok and flood.why.startswith("无权处置")
    assert not r.acts_on_all("e1.safety").ok
    assert r.may_act("ind.a", "dust", "长安镇", "ENT-A").ok   # the bureau's team keeps its right
    assert not r.may_act("ind.b", "rainstorm", "长安镇", "").ok  # and its limits


def test_the_live_stream_carries_only_what_the_person_may_see():
    roster = duty()
    a, b = (Warning(incident=i, key="k", rule="r", rule_name="n", hazard="dust", station="s",
                    town=t, enterprise=e) for i, t, e in (("I-A", "长安镇", "ENT-A"),
                                                          ("I-B", "厚街镇", "ENT-B")))
    scope, sent = roster.scope_of("e1.safety"), set()
    assert _streamed("incident", a, "e1.safety", scope, sent)
    assert not _streamed("incident", b, "e1.safety", scope, sent)
    assert _streamed("removed", "I-A", "e1.safety", scope, sent)
    assert not _streamed("removed", "I-B", "e1.safety", scope, sent)
    assert _streamed("incident", b, "room.a", roster.scope_of("room.a"), set())


# -- yujing config check ------------------------------------------------------------------

def _check(tmp_path: Path, registry: Path) -> tuple[int, str]:
    from typer.testing import CliRunner

    from yujing.cli.app import app
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"alerts: {{roster: {ROOT / 'roster.yaml'}, enterprises: "
                   f"{ROOT / 'enterprises.yaml'}}}\nworker: {{rules_dir: {ROOT / 'rules'}, "
                   f"registry: {registry}}}\n")
    r = CliRunner().invoke(app, ["config", "check", str(cfg)])
    return r.exit_code, r.output


def test_config_check_loads_the_example_enterprises_and_refuses_an_unregistered_one(tmp_path):
    code, out = _check(tmp_path, ROOT / "stations.yaml")
    assert code == 0 and "enterprises" in out and "4 enterprises, 4 towns" in out, out
    bad = tmp_path / "stations.yaml"
    bad.write_text((ROOT / "stations.yaml").read_text(encoding="utf-8").replace(
        "enterprise: ENT-DG-0003", "enterprise: ENT-DG-0999"), encoding="utf-8")
    code, out = _check(tmp_path, bad)
    assert code == 2 and "station DG-DL-D01: enterprise 'ENT-DG-0999' is not in" in out, out
