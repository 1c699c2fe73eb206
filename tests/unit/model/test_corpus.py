"""A corpus of broken inputs, each asserting the exact problems ``load_state`` reports.

Every case copies ``tests/data/minimal`` into a temporary directory, applies small textual edits
(or replaces a file by other text or raw bytes), loads the whole state and compares the complete
list of rendered problems (``Problem.render()``) with the expectation: equality, not a substring,
so a changed line number, key path or wording fails the test.

Cases with a ``regression`` note pin validator bugs found by this corpus and since fixed (B1–B13);
the note says what used to go wrong.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from govcloud.errors import ConfigError, Problem
from govcloud.model.state import load_state
from govcloud.settings import DataPaths

MINIMAL = Path(__file__).resolve().parents[2] / "data" / "minimal"

TOPO = "inventory/topology.yaml"
TEN = "tenants.yaml"
POL = "quotas/policy.yaml"
QUO = "quotas/quotas.yaml"
TIC = "tickets/t-1.yaml"

DELETE = object()
"""Edit meaning: remove the file."""


@dataclass(frozen=True)
class R:
    """Replace ``old`` (which must occur exactly once in the file) by ``new``."""

    old: str
    new: str


Edit = R | str | bytes | object  # list of R, or full text, or raw bytes, or DELETE


@dataclass
class Case:
    name: str
    edits: dict[str, Edit | list[R]]
    expected: list[str]
    regression: str = ""
    tickets: list[str] | None = field(default=None)


def make_dataset(tmp_path: Path, edits: dict[str, Edit | list[R]]) -> Path:
    """A copy of the minimal dataset with ``edits`` applied; returns its root."""
    root = tmp_path / "data"
    shutil.copytree(MINIMAL, root)
    for rel, edit in edits.items():
        path = root / rel
        if edit is DELETE:
            path.unlink()
        elif isinstance(edit, bytes):
            path.write_bytes(edit)
        elif isinstance(edit, str):
            path.write_text(edit, encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
            for change in edit if isinstance(edit, list) else [edit]:
                assert isinstance(change, R)
                assert text.count(change.old) == 1, f"{rel}: {change.old!r} occurs {text.count(change.old)} times"
                text = text.replace(change.old, change.new)
            path.write_text(text, encoding="utf-8")
    return root


def problems_of(root: Path, ticket_files: list[Path] | None = None) -> list[str]:
    """Rendered problems of loading ``root`` (an empty list when it loads)."""
    try:
        load_state(DataPaths(root=root), ticket_files)
    except ConfigError as exc:
        return [p.render() for p in exc.problems]
    return []


def test_minimal_dataset_is_valid() -> None:
    state = load_state(DataPaths(root=MINIMAL))
    assert [c.id for c in state.topology.clouds] == ["gd-prov", "city-foshan"]
    assert sorted(state.tenants) == ["city-foshan-gov", "gd-gat", "gd-zf"]
    assert len(state.quotas.quotas) == 3
    assert [t.id for t in state.tickets] == ["t-1"]


TICKET_HEAD = """\
version: 1
id: t-9
tenant: {tenant}
system: {system}
requester: someone
kind: {kind}
reason: 测试
"""

EXTRA_CLOUD = """\
  - id: city-foshan
    name: 佛山市政务云（重复）
    kind: city
    driver: openstack
    cloud: city-foshan-2
    region: gd-fs
    centres:
      - {id: fs-two, name: 二号中心, role: main, site: 佛山, availability_zones: [fs-two], capacity: {vcpus: 1, ram_mb: 1, disk_gb: 1}}
"""

SLUG = "a slug: lowercase a-z, 0-9 and '-', starting with a letter, at most 63 characters"

TWO_VMS = "    centre: any\n  - {name: db, count: 1, flavor: gc.small, image: debian-12, network: gov-shared, cloud: gd-prov}\n"
NO_QUOTA_T1 = ("tickets/t-1.yaml:11: vms: no quota (found: no quota for 'gd-gat' in 'gd-prov'; "
               "expected: a quota in quotas/ for the tenant in that cloud)")

CASES: list[Case] = [
    # --- reading: syntax, encodings, empty files ------------------------------------------------
    # PyYAML notices the unclosed bracket where the next ':' appears, one line below the bracket.
    Case("yaml-unclosed-bracket", {TOPO: R("availability_zones: [gz-backup]", "availability_zones: [gz-backup")},
         ["inventory/topology.yaml:26: YAML syntax error (found: expected ',' or ']', but got ':'; expected: valid YAML)"]),
    Case("yaml-unclosed-flow-at-eof", {TOPO: b"version: 1\nclouds: [\n"},
         ["inventory/topology.yaml:3: YAML syntax error (found: expected the node content, but found '<stream end>'; "
          "expected: valid YAML)"]),
    Case("yaml-bad-indentation", {TIC: R("kind: create\n", "  kind: create\n")},
         ["tickets/t-1.yaml:7: YAML syntax error (found: mapping values are not allowed here; expected: valid YAML)"]),
    Case("yaml-bad-indentation-in-list", {TOPO: R("    kind: provincial\n", "      kind: provincial\n")},
         ["inventory/topology.yaml:9: YAML syntax error (found: mapping values are not allowed here; expected: valid YAML)"]),
    Case("yaml-tab-indentation", {TIC: R("    count: 2\n", "\tcount: 2\n")},
         ["tickets/t-1.yaml:13: YAML syntax error (found: found character '\\t' that cannot start any token; "
          "expected: valid YAML)"]),
    Case("yaml-undefined-alias", {TIC: R("reason: 户籍系统扩容", "reason: *nope")},
         ["tickets/t-1.yaml:9: YAML syntax error (found: found undefined alias 'nope'; expected: valid YAML)"]),
    Case("yaml-two-documents", {TIC: "version: 1\n---\nid: x\n"},
         ["tickets/t-1.yaml:2: YAML syntax error (found: but found another document; expected: valid YAML)"]),
    Case("empty-file", {TIC: ""},
         ["tickets/t-1.yaml: empty file (found: an empty file; expected: a YAML mapping)"]),
    Case("comment-only-file", {TIC: "# nothing here yet\n   \n\n"},
         ["tickets/t-1.yaml: empty file (found: an empty file; expected: a YAML mapping)"]),
    # An empty quota file really holds no quota, so the ticket that needs one is reported too.
    Case("empty-quota-file", {QUO: "\n"},
         ["quotas/quotas.yaml: empty file (found: an empty file; expected: a YAML mapping)", NO_QUOTA_T1]),
    Case("utf16-bom", {TIC: (MINIMAL / TIC).read_text(encoding="utf-8").encode("utf-16")},
         ["tickets/t-1.yaml:1: wrong encoding (found: UTF-16 text (byte-order mark); expected: UTF-8 text)"]),
    Case("utf32-bom", {TIC: (MINIMAL / TIC).read_text(encoding="utf-8").encode("utf-32")},
         ["tickets/t-1.yaml:1: wrong encoding (found: UTF-32 text (byte-order mark); expected: UTF-8 text)"]),
    Case("utf8-bom-is-fine", {TIC: b"\xef\xbb\xbf" + (MINIMAL / TIC).read_bytes()}, []),
    Case("gbk-bytes", {TIC: (MINIMAL / TIC).read_text(encoding="utf-8").encode("gbk")},
         ["tickets/t-1.yaml:9: not valid UTF-8 (found: bytes bb a7 bc ae; "
          "expected: UTF-8 text (save the file as UTF-8, not GBK/GB18030))"]),
    Case("nul-byte", {TIC: R("reason: 户籍系统扩容", "reason: 户籍\x00系统扩容")},
         ["tickets/t-1.yaml:9: binary content (found: a NUL byte; expected: text)"]),
    Case("duplicate-key", {TOPO: R("    kind: provincial\n", "    kind: provincial\n    kind: city\n")},
         ["inventory/topology.yaml:10: clouds[0].kind: duplicate key (found: a second 'kind' (first on line 9); "
          "expected: each key once)"]),
    Case("non-text-key", {TIC: R("roles: [baseline]\n", "roles: [baseline]\n2027: leap\n")},
         ["tickets/t-1.yaml:11: keys must be text (found: key 2027 of type int; expected: a text key)"]),
    Case("sequence-as-key", {TIC: R("roles: [baseline]\n", "roles: [baseline]\n? [a, b]\n: x\n")},
         ["tickets/t-1.yaml:11: keys must be text (found: a sequence as key; expected: a text key)"]),
    Case("top-level-list", {TIC: "- version: 1\n- id: t-1\n"},
         ["tickets/t-1.yaml:1: wrong type (found: a list; expected: a mapping)"]),
    Case("top-level-scalar", {TIC: "just text\n"},
         ["tickets/t-1.yaml:1: wrong type (found: text 'just text'; expected: a mapping)"]),
    # --- schema: keys and types -------------------------------------------------------------------
    Case("unknown-key-did-you-mean", {TEN: R("    parent: gd-zf\n", "    parnet: gd-zf\n")},
         ["tenants.yaml:15: tenants[1].parnet: unknown key; did you mean 'parent'? (found: 'parnet'; "
          "expected: one of id, name, kind, contacts, clouds, systems, parent)"]),
    Case("missing-required-key", {TEN: R("    kind: city\n", "")},
         ["tenants.yaml:22: tenants[2].kind: missing required key (found: nothing; "
          "expected: one of department, city, party, npc, cppcc, other)"]),
    Case("misspelt-required-key",
         {TOPO: R("    driver: openstack\n    cloud: city-foshan\n", "    drivr: openstack\n    cloud: city-foshan\n")},
         ["inventory/topology.yaml:34: clouds[1].driver: missing required key (found: nothing; expected: one of openstack, terraform)",
          "inventory/topology.yaml:37: clouds[1].drivr: unknown key; did you mean 'driver'? (found: 'drivr'; "
          "expected: one of id, name, kind, driver, cloud, region, centres, terraform)"]),
    Case("int-given-as-text", {TOPO: R("{name: gc.medium, vcpus: 2,", "{name: gc.medium, vcpus: '2',")},
         ["inventory/topology.yaml:5: flavors[1].vcpus: wrong type (found: text '2'; expected: an integer)"]),
    Case("list-instead-of-mapping", {TIC: R("roles: [baseline]\n", "roles: [baseline]\nvars: [nginx]\n")},
         ["tickets/t-1.yaml:11: vars: wrong type (found: a list; expected: a mapping of names to Any)"]),
    Case("mapping-instead-of-list", {TIC: R("roles: [baseline]", "roles: {baseline: true}")},
         ["tickets/t-1.yaml:10: roles: wrong type (found: a mapping; expected: a list of a non-empty value)"]),
    Case("bool-instead-of-int", {TOPO: R("{name: gc.medium, vcpus: 2, ram_mb: 4096, disk_gb: 40}",
                                         "{name: gc.medium, vcpus: 2, ram_mb: 4096, disk_gb: yes}")},
         ["inventory/topology.yaml:5: flavors[1].disk_gb: wrong type (found: boolean True; expected: an integer)"]),
    Case("null-instead-of-text", {TEN: R("    name: 佛山市人民政府\n", "    name:\n")},
         ["tenants.yaml:23: tenants[2].name: wrong type (found: nothing (null); expected: text)"]),
    Case("version-wrong", {TEN: R("version: 1\n", "version: 2\n")},
         ["tenants.yaml:2: version: unknown value (found: integer 2; expected: one of 1)"]),
    Case("uppercase-id", {TEN: R("{id: portal,", "{id: Portal,")},
         [f"tenants.yaml:11: tenants[0].systems[0].id: not a valid id (found: text 'Portal'; expected: {SLUG})"]),
    Case("chinese-id", {TEN: R("{id: zwfw,", "{id: 政务服务,")},
         [f"tenants.yaml:29: tenants[2].systems[0].id: not a valid id (found: text '政务服务'; expected: {SLUG})"]),
    Case("literal-typo", {TOPO: R("    kind: city\n", "    kind: provinical\n")},
         ["inventory/topology.yaml:36: clouds[1].kind: unknown value; did you mean 'provincial'? "
          "(found: text 'provinical'; expected: one of provincial, sector, city, third-party)"]),
    Case("negative-capacity", {TOPO: R("capacity: {vcpus: 500, ram_mb: 2000000, disk_gb: 50000}\n      - id: sg-dr",
                                       "capacity: {vcpus: -500, ram_mb: 2000000, disk_gb: 50000}\n      - id: sg-dr")},
         ["inventory/topology.yaml:26: clouds[0].centres[1].capacity.vcpus: out of range (found: integer -500; expected: a number ≥ 0)"]),
    Case("overcommit-out-of-range", {TOPO: R("overcommit: {cpu: 4.0, ram: 1.0, disk: 1.0}", "overcommit: {cpu: 100, ram: 1.0, disk: 1.0}")},
         ["inventory/topology.yaml:20: clouds[0].centres[0].overcommit.cpu: out of range "
          "(found: integer 100; expected: a number between 0.1 and 64)"]),
    Case("datetime-instead-of-date", {TIC: R("expires: 2027-12-31", "expires: 2027-12-31T10:00:00")},
         ["tickets/t-1.yaml:8: expires: wrong type (found: datetime datetime.datetime(2027, 12, 31, 10, 0); "
          "expected: a date (YYYY-MM-DD))"]),
    # --- topology cross-checks --------------------------------------------------------------------
    Case("duplicate-cloud-id", {TOPO: (MINIMAL / TOPO).read_text(encoding="utf-8") + EXTRA_CLOUD},
         ["inventory/topology.yaml:48: clouds[2].id: duplicate cloud (found: 'city-foshan' again "
          "(first at inventory/topology.yaml:34); expected: a unique cloud id)"]),
    Case("duplicate-centre-id", {TOPO: R("      - id: gz-backup\n", "      - id: gz-main\n")},
         ["inventory/topology.yaml:21: clouds[0].centres[1].id: duplicate centre (found: 'gz-main' again "
          "(first at inventory/topology.yaml:14); expected: a unique centre id)"]),
    Case("duplicate-flavor", {TOPO: R("  - {name: gc.medium,", "  - {name: gc.small,")},
         ["inventory/topology.yaml:5: flavors[1].name: duplicate flavor (found: 'gc.small' again "
          "(first at inventory/topology.yaml:4); expected: a unique flavor id)"]),
    Case("two-main-centres", {TOPO: R("role: secondary", "role: main")},
         ["inventory/topology.yaml:23: clouds[0].centres[1].role: second main centre in cloud 'gd-prov' "
          "(found: 2 centres with role main; expected: at most one main centre per cloud)"]),
    Case("shared-availability-zone", {TOPO: R("availability_zones: [gz-backup]", "availability_zones: [gz-main]")},
         ["inventory/topology.yaml:25: clouds[0].centres[1].availability_zones: availability zone shared by two centres "
          "(found: zone 'gz-main' (index 0) also realises centre 'gz-main'; expected: each availability zone in one centre)"]),
    # --- tenants cross-checks ---------------------------------------------------------------------
    Case("duplicate-tenant-id",
         {TEN: (MINIMAL / TEN).read_text(encoding="utf-8")
          + "  - {id: gd-zf, name: 重复, kind: other, contacts: [{name: 某人}], clouds: [gd-prov]}\n"},
         ["tenants.yaml:30: tenants[3].id: duplicate tenant (found: 'gd-zf' again (first at tenants.yaml:4); "
          "expected: a unique tenant id)"]),
    Case("unknown-parent", {TEN: R("parent: gd-zf", "parent: gd-zz")},
         ["tenants.yaml:15: tenants[1].parent: unknown parent tenant (found: 'gd-zz'; expected: the id of a tenant in tenants.yaml)"]),
    # With gd-zf below gd-gat, gd-zf's quota really does exceed its (new) parent's.
    Case("hierarchy-cycle", {TEN: R("    kind: other\n", "    kind: other\n    parent: gd-gat\n")},
         ["quotas/quotas.yaml:6: quotas[0].limits: quota exceeds the parent's quota (found: instances=200, vcpus=800, "
          "ram_mb=1638400, disk_gb=40000; expected: at most the limit of parent 'gd-gat' in cloud 'gd-prov': instances=40, "
          "vcpus=160, ram_mb=327680, disk_gb=8000 (policy hierarchy: strict))",
          "tenants.yaml:7: tenants[0].parent: tenant hierarchy cycle (found: a cycle: gd-zf → gd-gat → gd-zf; "
          "expected: a hierarchy without cycles)"]),
    Case("unknown-cloud-in-tenant", {TEN: R("    clouds: [city-foshan]", "    clouds: [city-foshan, city-fs]")},
         ["tenants.yaml:27: tenants[2].clouds: unknown cloud (found: 'city-fs' (item 1); "
          "expected: a cloud id of inventory/topology.yaml: city-foshan, gd-prov)"]),
    Case("duplicate-cloud-in-tenant", {TEN: R("    clouds: [city-foshan]", "    clouds: [city-foshan, city-foshan]")},
         ["tenants.yaml:27: tenants[2].clouds: duplicate cloud (found: 'city-foshan' twice; expected: each cloud once)"]),
    Case("empty-clouds", {TEN: R("    clouds: [city-foshan]", "    clouds: []")},
         ["tenants.yaml:27: tenants[2].clouds: empty value (found: a list; expected: a non-empty value)"]),
    Case("duplicate-system-id", {TEN: R("{id: oa,", "{id: hukou,")},
         ["tenants.yaml:21: tenants[1].systems[1].id: duplicate business system (found: 'hukou' again "
          "(first at tenants.yaml:20); expected: a unique business system id)"]),
    # --- quotas -----------------------------------------------------------------------------------
    Case("unknown-tier", {QUO: R("tier: small", "tier: tiny")},
         ["quotas/quotas.yaml:14: quotas[2].tier: unknown tier (found: 'tiny'; expected: one of the tiers: medium, small)"]),
    Case("incomplete-limits-without-tier",
         {QUO: R("{instances: 200, vcpus: 800, ram_mb: 1638400, disk_gb: 40000}", "{instances: 200, vcpus: 800}")},
         ["quotas/quotas.yaml:6: quotas[0].limits: incomplete quota (found: limits without ram_mb, disk_gb; "
          "expected: a tier, or limits for instances, vcpus, ram_mb and disk_gb)"],
         regression="B4: a parent quota that is written but cannot be resolved (incomplete) is also reported as missing: "
             "'quotas[1].cloud: child quota without a parent quota' (validate_quotas._check_hierarchy only sees "
             "resolved quotas)"),
    Case("quota-unknown-tenant", {QUO: R("tenant: city-foshan-gov", "tenant: city-foshan-zf")},
         ["quotas/quotas.yaml:12: quotas[2].tenant: unknown tenant (found: 'city-foshan-zf'; expected: a tenant id of tenants.yaml)"]),
    # gd-gat's only quota moves to a cloud it may not use, so its ticket in gd-prov has no quota left.
    Case("quota-cloud-not-of-tenant", {QUO: R("    cloud: gd-prov\n    tier: medium", "    cloud: city-foshan\n    tier: medium")},
         ["quotas/quotas.yaml:8: quotas[1].cloud: cloud not allowed for this tenant (found: 'city-foshan'; "
          "expected: one of the clouds of tenant 'gd-gat': gd-prov)", NO_QUOTA_T1]),
    Case("quota-unknown-cloud", {QUO: R("    cloud: city-foshan\n", "    cloud: city-fooshan\n")},
         ["quotas/quotas.yaml:13: quotas[2].cloud: unknown cloud (found: 'city-fooshan'; expected: a cloud id of inventory/topology.yaml)"]),
    Case("duplicate-quota", {QUO: R("totals:\n", "  - {tenant: gd-zf, cloud: gd-prov, tier: small}\ntotals:\n")},
         ["quotas/quotas.yaml:16: quotas[3].cloud: duplicate quota (found: a second quota for 'gd-zf' in 'gd-prov' "
          "(first at quotas/quotas.yaml:4); expected: one quota per tenant and cloud)"]),
    Case("two-policies", {QUO: R("version: 1\n", "version: 1\npolicy: {hierarchy: loose}\n")},
         ["quotas/quotas.yaml:3: policy: duplicate policy (found: a second policy (first in quotas/policy.yaml); "
          "expected: one policy across all quota files)"]),
    Case("duplicate-tier",
         {QUO: R("version: 1\n", "version: 1\ntiers:\n  small: {instances: 1, vcpus: 1, ram_mb: 1, disk_gb: 1}\n")},
         ["quotas/quotas.yaml:3: tiers: duplicate tier (found: tier 'small' again (first in quotas/policy.yaml); "
          "expected: each tier defined once)"]),
    Case("tier-missing-resource", {POL: R("small: {instances: 10, vcpus: 40, ram_mb: 81920, disk_gb: 2000}",
                                          "small: {instances: 10, vcpus: 40, ram_mb: 81920}")},
         ["quotas/policy.yaml:5: tiers.small.disk_gb: missing required key (found: nothing; expected: a number ≥ 0)"],
         regression="B3: a tier dropped for a schema problem is then also reported as 'unknown tier' where it is used "
             "(quotas/quotas.yaml:14 quotas[2].tier), although it is written in policy.yaml"),
    Case("policy-warn-at-out-of-range", {POL: R("warn_at: 0.8", "warn_at: 80")},
         ["quotas/policy.yaml:3: policy.warn_at: out of range (found: integer 80; expected: a number between 0 and 1)"],
         regression="B3: one bad value anywhere in a quota file discards the whole file (QuotaFile is INVALID), so every "
             "tier it defines is reported as 'unknown tier (none defined)' in quotas.yaml and the ticket as 'no quota'"),
    Case("system-sub-limit-exceeds-tenant", {QUO: R("hukou: {instances: 20, vcpus: 80,", "hukou: {instances: 20, vcpus: 800,")},
         ["quotas/quotas.yaml:11: quotas[1].systems.hukou: system sub-limit exceeds the tenant's quota "
          "(found: vcpus=800; expected: at most the tenant's limit in gd-prov: vcpus=160)"]),
    Case("sub-limit-unknown-system", {QUO: R("      hukou:", "      hukuo:")},
         ["quotas/quotas.yaml:11: quotas[1].systems.hukuo: unknown business system "
          "(found: 'hukuo'; expected: a business system of tenant 'gd-gat': hukou, oa)"]),
    Case("sub-limit-incomplete", {QUO: R("hukou: {instances: 20, vcpus: 80, ram_mb: 163840, disk_gb: 4000}",
                                         "hukou: {instances: 20, vcpus: 80, ram_mb: 163840}")},
         ["quotas/quotas.yaml:11: quotas[1].systems.hukou.disk_gb: missing required key (found: nothing; expected: a number ≥ 0)"]),
    Case("quota-exceeds-cloud-capacity",
         {QUO: R("    tier: small\n", "    limits: {instances: 10, vcpus: 4000, ram_mb: 81920, disk_gb: 2000}\n")},
         ["quotas/quotas.yaml:14: quotas[2].limits: quota exceeds the cloud's capacity (found: vcpus=4000; "
          "expected: at most what cloud 'city-foshan' can give (capacity × overcommit): vcpus=400)"]),
    Case("tier-exceeds-cloud-capacity",
         {POL: R("small: {instances: 10, vcpus: 40,", "small: {instances: 10, vcpus: 401,")},
         ["quotas/quotas.yaml:14: quotas[2].tier: quota exceeds the cloud's capacity (found: vcpus=401; "
          "expected: at most what cloud 'city-foshan' can give (capacity × overcommit): vcpus=400)"]),
    Case("child-exceeds-parent", {QUO: R("    tier: medium\n", "    tier: medium\n    limits: {vcpus: 1000}\n")},
         ["quotas/quotas.yaml:10: quotas[1].limits: quota exceeds the parent's quota (found: vcpus=1000; "
          "expected: at most the limit of parent 'gd-zf' in cloud 'gd-prov': vcpus=800 (policy hierarchy: strict))"]),
    Case("child-exceeds-parent-loose-ok",
         {QUO: R("    tier: medium\n", "    tier: medium\n    limits: {vcpus: 1000}\n"),
          POL: R("hierarchy: strict", "hierarchy: loose")},
         []),
    Case("child-without-parent-quota",
         {QUO: R("  - tenant: gd-zf\n    cloud: gd-prov\n    limits: {instances: 200, vcpus: 800, ram_mb: 1638400, disk_gb: 40000}\n", "")},
         ["quotas/quotas.yaml:5: quotas[0].cloud: child quota without a parent quota (found: no quota for parent 'gd-zf' "
          "in 'gd-prov'; expected: the parent to have a quota in every cloud its children use (policy hierarchy: strict))"]),
    Case("total-unknown-tenant", {QUO: R("{tenant: gd-gat, tier: medium}", "{tenant: gd-gta, tier: medium}")},
         ["quotas/quotas.yaml:17: totals[0].tenant: unknown tenant (found: 'gd-gta'; expected: a tenant id of tenants.yaml)"]),
    Case("duplicate-total",
         {QUO: R("  - {tenant: gd-gat, tier: medium}\n", "  - {tenant: gd-gat, tier: medium}\n  - {tenant: gd-gat, tier: small}\n")},
         ["quotas/quotas.yaml:18: totals[1].tenant: duplicate total (found: a second total for 'gd-gat'; expected: one total per tenant)"]),
    Case("no-quota-files", {POL: DELETE, QUO: DELETE},
         ["quotas: no quotas (found: no *.yaml files; expected: at least one quota file)", NO_QUOTA_T1]),
    # --- tickets ----------------------------------------------------------------------------------
    Case("ticket-unknown-tenant", {TIC: R("tenant: gd-gat", "tenant: gd-gta")},
         ["tickets/t-1.yaml:4: tenant: unknown tenant (found: 'gd-gta'; expected: a tenant id of tenants.yaml)"]),
    Case("ticket-unknown-system", {TIC: R("system: hukou", "system: hukuo")},
         ["tickets/t-1.yaml:5: system: unknown business system (found: 'hukuo'; expected: a business system of 'gd-gat': hukou, oa)"]),
    Case("ticket-unknown-flavor", {TIC: R("flavor: gc.small", "flavor: gc.tiny")},
         ["tickets/t-1.yaml:14: vms[0].flavor: unknown flavor (found: 'gc.tiny'; "
          "expected: a flavor of inventory/topology.yaml: gc.small, gc.medium)"]),
    Case("ticket-flavor-and-vcpus", {TIC: R("    flavor: gc.small\n", "    flavor: gc.small\n    vcpus: 2\n")},
         ["tickets/t-1.yaml:15: vms[0].vcpus: size given twice (found: flavor 'gc.small' and vcpus; "
          "expected: either a flavor or vcpus/ram_mb/disk_gb)"]),
    Case("ticket-missing-size", {TIC: R("    flavor: gc.small\n", "")},
         ["tickets/t-1.yaml:12: vms[0].flavor: VM size missing (found: no flavor; "
          "expected: a flavor, or all of vcpus, ram_mb and disk_gb)"]),
    Case("ticket-partial-size", {TIC: R("    flavor: gc.small\n", "    vcpus: 2\n")},
         ["tickets/t-1.yaml:12: vms[0].flavor: VM size missing (found: no flavor and no ram_mb, disk_gb; "
          "expected: a flavor, or all of vcpus, ram_mb and disk_gb)"]),
    Case("ticket-unknown-cloud", {TIC: R("cloud: gd-prov", "cloud: gd-prv")},
         ["tickets/t-1.yaml:17: vms[0].cloud: unknown cloud (found: 'gd-prv'; expected: a cloud id of inventory/topology.yaml, or any)"],
         regression="B5: an unknown VM cloud is also reported as 'vms: no quota (found: no quota for gd-gat in gd-prv)' "
             "(validate_tickets._check_demand runs on VMs whose cloud does not exist)"),
    Case("ticket-unknown-centre", {TIC: R("centre: any", "centre: gz-mian")},
         ["tickets/t-1.yaml:18: vms[0].centre: unknown centre (found: 'gz-mian'; "
          "expected: a centre of 'gd-prov': gz-main, gz-backup, sg-dr, or any)"]),
    Case("ticket-centre-without-cloud", {TIC: [R("cloud: gd-prov", "cloud: any"), R("centre: any", "centre: gz-main")]},
         ["tickets/t-1.yaml:18: vms[0].centre: centre without a cloud (found: 'gz-main' with cloud any; "
          "expected: a cloud when a centre is named)"]),
    Case("ticket-any-cloud-ok", {TIC: R("cloud: gd-prov", "cloud: any")}, []),
    Case("ticket-cloud-not-allowed", {TIC: [R("system: hukou", "system: oa"), R("cloud: gd-prov", "cloud: city-foshan")]},
         ["tickets/t-1.yaml:11: vms: no quota (found: no quota for 'gd-gat' in 'city-foshan'; "
          "expected: a quota in quotas/ for the tenant in that cloud)",
          "tickets/t-1.yaml:17: vms[0].cloud: cloud not allowed for this tenant (found: 'city-foshan'; "
          "expected: one of the clouds of tenant 'gd-gat': gd-prov)"]),
    Case("ticket-dr-without-dr-centre",
         {TIC: TICKET_HEAD.format(tenant="city-foshan-gov", system="zwfw", kind="create")
          + "protection: dr\nexpires: 2027-12-31\nvms:\n"
            "  - {name: web, count: 1, flavor: gc.small, image: debian-12, network: gov-shared, cloud: city-foshan}\n"},
         ["tickets/t-1.yaml:11: vms[0].cloud: protection not possible in this cloud (found: 'city-foshan' with centres main; "
          "expected: a cloud with dr centres for protection dr)"]),
    Case("ticket-create-without-vms", {TIC: TICKET_HEAD.format(tenant="gd-gat", system="oa", kind="create")
                                       + "expires: 2027-12-31\n"},
         ["tickets/t-1.yaml:1: vms: missing 'vms' (found: nothing; expected: 'vms' for a create ticket)"]),
    Case("ticket-delete-without-target", {TIC: TICKET_HEAD.format(tenant="gd-gat", system="oa", kind="delete")},
         ["tickets/t-1.yaml:1: target: missing 'target' (found: nothing; expected: 'target' for a delete ticket)"]),
    Case("ticket-delete-ok", {TIC: TICKET_HEAD.format(tenant="gd-gat", system="oa", kind="delete") + "target: t-0\n"}, []),
    Case("ticket-resize-without-target", {TIC: R("kind: create", "kind: resize")},
         ["tickets/t-1.yaml:2: target: missing 'target' (found: nothing; expected: 'target' for a resize ticket)"]),
    Case("ticket-quota-change-without-quota", {TIC: TICKET_HEAD.format(tenant="gd-gat", system="oa", kind="quota-change")},
         ["tickets/t-1.yaml:1: quota: missing 'quota' (found: nothing; expected: 'quota' for a quota-change ticket)"]),
    Case("ticket-quota-change-ok", {TIC: TICKET_HEAD.format(tenant="gd-gat", system="oa", kind="quota-change")
                                    + "quota:\n  cloud: gd-prov\n  limits: {vcpus: 400}\n"}, []),
    Case("ticket-vms-on-delete", {TIC: [R("kind: create", "kind: delete"), R("expires: 2027-12-31\n", "target: t-0\n")]},
         ["tickets/t-1.yaml:11: vms: 'vms' does not belong to kind delete (found: 'vms'; expected: no 'vms' in a delete ticket)"]),
    Case("ticket-quota-on-create", {TIC: R("roles: [baseline]\n", "roles: [baseline]\nquota: {cloud: gd-prov, limits: {vcpus: 1}}\n")},
         ["tickets/t-1.yaml:11: quota: 'quota' does not belong to kind create (found: 'quota'; expected: no 'quota' in a create ticket)"]),
    Case("ticket-quota-change-unknown-cloud",
         {TIC: TICKET_HEAD.format(tenant="gd-gat", system="oa", kind="quota-change")
          + "quota:\n  cloud: gd-prv\n  limits: {vcpus: 400}\n"},
         ["tickets/t-1.yaml:8: quota: unknown cloud (found: cloud 'gd-prv'; expected: a cloud id of inventory/topology.yaml)"]),
    Case("ticket-missing-expires", {TIC: R("expires: 2027-12-31\n", "")},
         ["tickets/t-1.yaml:2: expires: missing lease (found: nothing; expected: a lease end date (YYYY-MM-DD))"]),
    Case("ticket-missing-required-keys", {TIC: "version: 1\nid: T 1\n"},
         ["tickets/t-1.yaml:1: kind: missing required key (found: nothing; expected: one of create, resize, delete, quota-change)",
          "tickets/t-1.yaml:1: reason: missing required key (found: nothing; expected: a non-empty value)",
          "tickets/t-1.yaml:1: requester: missing required key (found: nothing; expected: a non-empty value)",
          f"tickets/t-1.yaml:1: system: missing required key (found: nothing; expected: {SLUG})",
          f"tickets/t-1.yaml:1: tenant: missing required key (found: nothing; expected: {SLUG})",
          f"tickets/t-1.yaml:2: id: not a valid id (found: text 'T 1'; expected: {SLUG})"]),
    Case("ticket-exceeds-quota", {TIC: R("    count: 2\n", "    count: 30\n")},
         ["tickets/t-1.yaml:11: vms: ticket exceeds what the tenant could ever get (found: instances=30; "
          "expected: at most the sub-limit of system 'hukou' in cloud 'gd-prov': instances=20)"]),
    Case("ticket-exceeds-tenant-limit", {TIC: [R("system: hukou", "system: oa"), R("    count: 2\n", "    count: 41\n")]},
         ["tickets/t-1.yaml:11: vms: ticket exceeds what the tenant could ever get (found: instances=41; "
          "expected: at most the limit of tenant 'gd-gat' in cloud 'gd-prov': instances=40)",
          "tickets/t-1.yaml:11: vms: ticket exceeds what the tenant could ever get (found: instances=41; "
          "expected: at most the total limit of tenant 'gd-gat' across clouds: instances=40)"]),
    Case("ticket-duplicate-id", {"tickets/t-2.yaml": (MINIMAL / TIC).read_text(encoding="utf-8")},
         ["tickets/t-2.yaml:3: id: duplicate ticket (found: 't-1' again (first in tickets/t-1.yaml); expected: a unique ticket id)"]),
    Case("ticket-bad-date", {TIC: R("expires: 2027-12-31", "expires: 2027-02-30")},
         ["tickets/t-1.yaml:8: expires: cannot read value "
          "(found: '2027-02-30' (day is out of range for month); expected: a real date (YYYY-MM-DD))"]),
    Case("ticket-date-as-text", {TIC: R("expires: 2027-12-31", "expires: 31.12.2027")},
         ["tickets/t-1.yaml:8: expires: wrong type (found: text '31.12.2027'; expected: a date (YYYY-MM-DD))"]),
    Case("ticket-count-zero", {TIC: [R("    count: 2\n", "    count: 0\n"), R("    centre: any\n", TWO_VMS)]},
         ["tickets/t-1.yaml:13: vms[0].count: out of range (found: integer 0; expected: a number between 1 and 1000)"]),
    # --- several files at once --------------------------------------------------------------------
    Case("errors-in-every-file",
         {TOPO: R("      - id: gz-backup\n", "      - id: gz-main\n"),
          TEN: R("parent: gd-zf", "parent: gd-zz"),
          POL: R("tiers:\n", "quotas:\n  - {tenant: gd-zf, cloud: city-foshan, tier: small}\ntiers:\n"),
          QUO: R("tier: small", "tier: tiny"),
          TIC: R("flavor: gc.small", "flavor: gc.tiny")},
         ["inventory/topology.yaml:21: clouds[0].centres[1].id: duplicate centre (found: 'gz-main' again "
          "(first at inventory/topology.yaml:14); expected: a unique centre id)",
          "quotas/policy.yaml:5: quotas[0].cloud: cloud not allowed for this tenant (found: 'city-foshan'; "
          "expected: one of the clouds of tenant 'gd-zf': gd-prov)",
          "quotas/quotas.yaml:14: quotas[2].tier: unknown tier (found: 'tiny'; expected: one of the tiers: medium, small)",
          "tenants.yaml:15: tenants[1].parent: unknown parent tenant (found: 'gd-zz'; expected: the id of a tenant in tenants.yaml)",
          "tickets/t-1.yaml:14: vms[0].flavor: unknown flavor (found: 'gc.tiny'; "
          "expected: a flavor of inventory/topology.yaml: gc.small, gc.medium)"]),
    Case("unreadable-files-everywhere",
         {TOPO: b"version: 1\nclouds: [\n", TEN: "", POL: b"version: 1\n\xff\xfe\n", QUO: "- 1\n",
          TIC: "version: 1\nid: T 1\n"},
         ["inventory/topology.yaml:3: YAML syntax error (found: expected the node content, but found '<stream end>'; "
          "expected: valid YAML)",
          "quotas/policy.yaml:2: not valid UTF-8 (found: bytes ff fe 0a; expected: UTF-8 text (save the file as UTF-8, not GBK/GB18030))",
          "quotas/quotas.yaml:1: wrong type (found: a list; expected: a mapping)",
          "tenants.yaml: empty file (found: an empty file; expected: a YAML mapping)",
          "tickets/t-1.yaml:1: kind: missing required key (found: nothing; expected: one of create, resize, delete, quota-change)",
          "tickets/t-1.yaml:1: reason: missing required key (found: nothing; expected: a non-empty value)",
          "tickets/t-1.yaml:1: requester: missing required key (found: nothing; expected: a non-empty value)",
          f"tickets/t-1.yaml:1: system: missing required key (found: nothing; expected: {SLUG})",
          f"tickets/t-1.yaml:1: tenant: missing required key (found: nothing; expected: {SLUG})",
          f"tickets/t-1.yaml:2: id: not a valid id (found: text 'T 1'; expected: {SLUG})"]),
    # --- regressions: cascades from one broken entry (fixed; one problem, no knock-on errors) -------
    Case("unreadable-tenants-file", {TEN: (MINIMAL / TEN).read_text(encoding="utf-8").encode("gbk")},
         ["tenants.yaml:5: not valid UTF-8 (found: bytes b9 e3 b6 ab; "
          "expected: UTF-8 text (save the file as UTF-8, not GBK/GB18030))"],
         regression="B1: when tenants.yaml cannot be read at all, every tenant reference is also reported as 'unknown "
             "tenant' (quotas[0..2].tenant, totals[0].tenant, the ticket's tenant); the topology has a guard "
             "for this (parsed.topology is not None), tenants have none"),
    Case("broken-cloud-entry", {TOPO: R("kind: provincial", "kind: provinical")},
         ["inventory/topology.yaml:9: clouds[0].kind: unknown value; did you mean 'provincial'? "
          "(found: text 'provinical'; expected: one of provincial, sector, city, third-party)"],
         regression="B2: a cloud dropped for a schema problem makes every ticket VM in it report 'unknown cloud' "
             "(tickets/t-1.yaml:17 vms[0].cloud: found 'gd-prov'); validate_tickets._check_vm uses "
             "topology.cloud() instead of the declared cloud ids the quota checks use"),
    Case("broken-dr-centre-entry", {TOPO: R("        region: gd-sg\n", "        region: 5\n")},
         ["inventory/topology.yaml:31: clouds[0].centres[2].region: wrong type (found: integer 5; expected: text)"],
         regression="B2: a dr centre dropped for a schema problem makes the ticket report 'protection not possible in "
             "this cloud (found: gd-prov with centres main, secondary)'"),
    Case("broken-only-centre", {TOPO: R("capacity: {vcpus: 100,", "capacity: {vcpus: '100',")},
         ["inventory/topology.yaml:46: clouds[1].centres[0].capacity.vcpus: wrong type (found: text '100'; expected: an integer)"],
         regression="B6: when the only item of a non-empty list is broken it is dropped and the list is then reported as "
             "'clouds[1].centres: empty value (found: a list; expected: a non-empty value)' (schema._annotated "
             "checks NonEmpty on the filtered tuple)"),
    Case("broken-only-vm", {TIC: R("    count: 2\n", "    count: true\n")},
         ["tickets/t-1.yaml:13: vms[0].count: wrong type (found: boolean True; expected: an integer)"],
         regression="B6: a create ticket whose only VM has a type error is also reported as \"vms: missing 'vms' "
             "(found: nothing)\" although vms is written"),
]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name)
     for c in CASES],
)
def test_broken_input(case: Case, tmp_path: Path) -> None:
    root = make_dataset(tmp_path, case.edits)
    assert problems_of(root) == case.expected


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 45
    assert len({c.name for c in CASES}) == len(CASES)


# --- regressions asserted by structure (file, line, key) --------------------------------------


def _only_problem(edits: dict[str, Edit | list[R]], tmp_path: Path) -> list[Problem]:
    """The problems of loading the edited dataset; anything but ConfigError propagates (and fails)."""
    root = make_dataset(tmp_path, edits)
    with pytest.raises(ConfigError) as info:
        load_state(DataPaths(root=root))
    return list(info.value.problems)


def test_nan_overcommit_is_a_problem(tmp_path: Path) -> None:
    problems = _only_problem({TOPO: R("overcommit: {cpu: 4.0}", "overcommit: {cpu: .nan}")}, tmp_path)
    assert [(p.file, p.line, p.key) for p in problems] == [("inventory/topology.yaml", 47, "clouds[1].centres[0].overcommit.cpu")]


def test_nan_warn_at_is_a_problem(tmp_path: Path) -> None:
    problems = _only_problem({QUO: R("warn_at: 0.9", "warn_at: .nan")}, tmp_path)
    assert [(p.file, p.line, p.key) for p in problems] == [("quotas/quotas.yaml", 15, "quotas[2].warn_at")]


def test_deep_nesting_is_a_problem(tmp_path: Path) -> None:
    problems = _only_problem({TIC: "version: 1\nvars: {x: " + "[" * 2000 + "]" * 2000 + "}\n"}, tmp_path)
    assert [(p.file, p.line) for p in problems] == [("tickets/t-1.yaml", 2)]


def test_control_character_line(tmp_path: Path) -> None:
    problems = _only_problem({TIC: R("reason: 户籍系统扩容", "reason: 户籍\x07系统扩容")}, tmp_path)
    assert [p.render() for p in problems] == [
        "tickets/t-1.yaml:9: YAML syntax error (found: unacceptable character #x0007; "
        "expected: printable text (no control characters))"]


def test_hidden_line_separator_keeps_line_numbers_true(tmp_path: Path) -> None:
    """Found by the fuzzer (seed 20883): YAML counts U+2028 as a line break, so later lines were off by one."""
    problems = _only_problem({TIC: R("reason: 户籍系统扩容", "reason: 户籍\u2028系统扩容")}, tmp_path)
    assert [(p.file, p.line, p.column, p.message) for p in problems] == [("tickets/t-1.yaml", 9, 11, "hidden line break")]
    assert "U+2028" in problems[0].found


def test_unknown_tag_message_is_one_line(tmp_path: Path) -> None:
    problems = _only_problem({TIC: R("reason: 户籍系统扩容", "reason: !foo 户籍系统扩容")}, tmp_path)
    assert [(p.file, p.line, p.key) for p in problems] == [("tickets/t-1.yaml", 9, "reason")]
    assert all("\n" not in p.render() and "<unicode string>" not in p.render() for p in problems)


def test_bad_merge_key_line(tmp_path: Path) -> None:
    problems = _only_problem({TIC: R("roles: [baseline]\n", "roles: [baseline]\n<<: 3\n")}, tmp_path)
    assert [(p.file, p.line) for p in problems] == [("tickets/t-1.yaml", 11)]
    assert "while constructing" not in problems[0].found


def test_ticket_path_given_outside_root(tmp_path: Path) -> None:
    """A ticket file named on the command line outside the data root is shown by its own path."""
    root = make_dataset(tmp_path, {})
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((MINIMAL / TIC).read_text(encoding="utf-8").replace("flavor: gc.small", "flavor: gc.tiny"), encoding="utf-8")
    assert problems_of(root, [outside]) == [
        f"{outside}:14: vms[0].flavor: unknown flavor (found: 'gc.tiny'; expected: a flavor of inventory/topology.yaml: gc.small, gc.medium)"]


def test_ticket_path_is_a_directory(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {})
    (root / "tickets" / "dir.yaml").mkdir()
    assert problems_of(root, [root / "tickets" / "dir.yaml"]) == [
        "tickets/dir.yaml: not a regular file (found: a directory; expected: a regular file)"]


def test_missing_topology_file(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {TOPO: DELETE})
    assert problems_of(root) == ["inventory/topology.yaml: missing file (found: no such file; expected: a readable file)"]
