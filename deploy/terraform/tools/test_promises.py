#!/usr/bin/env python3
"""The seed's promises, asserted on the HCL of deploy/terraform (python-hcl2, no cloud).

Runs under pytest (`pytest tools/test_promises.py`) or alone (`python tools/test_promises.py`,
which prints "N passed, M failed" and exits non-zero on a failure).

Where a promise is a variable validation, the condition's text is parsed and evaluated here
for a value that must pass and one that must be refused (Terraform itself cannot run offline:
the provider cannot be downloaded, so `terraform validate`/`plan` are not available).
"""

from __future__ import annotations

import ipaddress
import math
import re
import sys
from functools import lru_cache
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).resolve().parent.parent
ALERT_RULES = ROOT.parent / "observability" / "alerts.rules.yml"
BRAZIL_REGIONS = {"sa-saopaulo-1", "sa-vinhedo-1"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def doc(rel: str) -> dict:
    text = (ROOT / rel).read_text()
    return hcl2.loads(text, serialization_options=SerializationOptions(with_comments=False))


def tf_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.tf") if not any(s.startswith(".") for s in p.relative_to(ROOT).parts))


def unq(v):
    """A string literal's value; anything else unchanged."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1]
    return v


def expr(v) -> str:
    """An expression's text without ${ }."""
    v = str(v)
    return v[2:-1] if v.startswith("${") and v.endswith("}") else v


def labelled(entries: list, *labels: str):
    """Body of the block with these labels (e.g. resource, "oci_x", "name")."""
    for entry in entries:
        node = entry
        for label in labels:
            node = node.get(f'"{label}"')
            if node is None:
                break
        else:
            return node
    raise AssertionError(f"no block {labels}")


def blocks(body: dict, name: str) -> list[dict]:
    return body.get(name, []) if isinstance(body.get(name), list) else []


def variable(rel: str, name: str) -> dict:
    return labelled(doc(rel)["variable"], name)


def resources(rel: str, tf_type: str) -> dict[str, dict]:
    out = {}
    for entry in doc(rel).get("resource", []):
        for tlabel, named in entry.items():
            if unq(tlabel) == tf_type:
                for nlabel, body in named.items():
                    if not nlabel.startswith("__"):
                        out[unq(nlabel)] = body
    return out


def module_call(name: str) -> dict:
    return labelled(doc("main.tf")["module"], name)


def port_range(rule: dict):
    tcp = blocks(rule, "tcp_options")
    if not tcp:
        return None
    rng = blocks(tcp[0], "destination_port_range")[0]
    return (rng["min"], rng["max"])


def eval_condition(condition: str, var_name: str, value) -> bool:
    """Evaluates the few validation shapes used here for one value of var.<var_name>."""
    c = expr(condition).strip()
    ref = f"var.{var_name}"
    m = re.fullmatch(r"contains\(\[(.*)\],\s*" + re.escape(ref) + r"\)", c, re.S)
    if m:
        items = [unq(x.strip()) for x in m.group(1).split(",") if x.strip()]
        return value in items
    m = re.fullmatch(re.escape(ref) + r"\s*(==|>=|<=)\s*(\w+)", c)
    if m:
        op, rhs = m.groups()
        rhs_v = {"true": True, "false": False}.get(rhs, None)
        rhs_v = rhs_v if rhs_v is not None else float(rhs)
        return {"==": value == rhs_v, ">=": value >= rhs_v, "<=": value <= rhs_v}[op]
    m = re.fullmatch(re.escape(ref) + r"\s*>=\s*(\d+)\s*&&\s*" + re.escape(ref) + r"\s*<=\s*(\d+)", c)
    if m:
        return int(m.group(1)) <= value <= int(m.group(2))
    m = re.fullmatch(r'can\(regex\("([^"]+)",\s*' + re.escape(ref) + r"\)\)", c)
    if m:  # Terraform's regex() is RE2; the patterns used here mean the same in Python
        return isinstance(value, str) and re.search(m.group(1), value) is not None
    m = re.fullmatch(r"length\(" + re.escape(ref) + r"\)\s*>=\s*(\d+)", c)
    if m:
        return len(value) >= int(m.group(1))
    m = re.fullmatch(r'alltrue\(\[for (\w+) in ' + re.escape(ref) + r' : can\(cidrhost\(\1, 0\)\) && !endswith\(\1, "([^"]+)"\)\]\)', c)
    if m:
        def is_cidr(x):
            try:
                ipaddress.ip_network(x, strict=False)
                return "/" in x
            except ValueError:
                return False
        return all(is_cidr(x) and not x.endswith(m.group(2)) for x in value)
    raise AssertionError(f"condition shape not understood: {c}")


def validations(rel: str, name: str) -> list[str]:
    return [v["condition"] for v in blocks(variable(rel, name), "validation")]


def accepted(rel: str, name: str, value) -> bool:
    return all(eval_condition(c, name, value) for c in validations(rel, name))


# ---------------------------------------------------------------------------------------------
# COM-002: data residency
# ---------------------------------------------------------------------------------------------
def test_region_default_is_sao_paulo():
    assert unq(variable("variables.tf", "region")["default"]) == "sa-saopaulo-1"


def test_region_validation_refuses_non_brazilian_regions():
    conds = validations("variables.tf", "region")
    assert conds, "region has no validation"
    listed = re.findall(r'"([a-z0-9-]+)"', expr(conds[0]))
    assert listed and set(listed) <= BRAZIL_REGIONS, f"non-Brazilian region allowed: {listed}"
    for region in ("sa-saopaulo-1", "sa-vinhedo-1"):
        assert accepted("variables.tf", "region", region)
    for region in ("us-ashburn-1", "sa-santiago-1", "sa-bogota-1", "eu-frankfurt-1", "sa-valparaiso-1"):
        assert not accepted("variables.tf", "region", region), region


def test_every_resource_is_created_in_var_region():
    providers = doc("providers.tf")["provider"]
    assert len(providers) == 1, "one provider block, no aliases to another region"
    body = providers[0]['"oci"']
    assert expr(body["region"]) == "var.region"
    assert "alias" not in body
    for path in tf_files():
        assert not doc(str(path.relative_to(ROOT))).get("provider") or path.name == "providers.tf", path
        for found in re.findall(r"\b([a-z]{2}-[a-z]+-\d)\b", path.read_text()):
            assert found in BRAZIL_REGIONS, f"{path}: region literal {found}"


# ---------------------------------------------------------------------------------------------
# GUD-003: backups
# ---------------------------------------------------------------------------------------------
def test_postgresql_backup_retention_30_days():
    var = variable("variables.tf", "db_backup_retention_days")
    assert var["default"] == 30
    assert accepted("variables.tf", "db_backup_retention_days", 30)
    assert not accepted("variables.tf", "db_backup_retention_days", 29)
    assert expr(module_call("database")["backup_retention_days"]) == "var.db_backup_retention_days"
    db = resources("modules/database/main.tf", "oci_psql_db_system")["this"]
    policy = blocks(blocks(db, "management_policy")[0], "backup_policy")[0]
    assert unq(policy["kind"]) == "DAILY"
    assert expr(policy["retention_days"]) == "var.backup_retention_days"
    assert not accepted("modules/database/variables.tf", "backup_retention_days", 7)


def test_backup_bucket_keeps_backups_30_days():
    assert variable("variables.tf", "backup_retention_days")["default"] == 30
    assert not accepted("variables.tf", "backup_retention_days", 29)
    policy = resources("modules/storage/main.tf", "oci_objectstorage_object_lifecycle_policy")["backups"]
    expire = [r for r in blocks(policy, "rules") if unq(r["name"]) == "expire-backups"][0]
    assert expr(expire["time_amount"]) == "var.backup_retention_days" and unq(expire["time_unit"]) == "DAYS"


# ---------------------------------------------------------------------------------------------
# SEC-001 / SEC-002: TLS
# ---------------------------------------------------------------------------------------------
def test_lb_listener_is_tls_12_plus_only():
    listeners = resources("modules/load_balancer/main.tf", "oci_load_balancer_listener")
    assert listeners, "no listener"
    for name, listener in listeners.items():
        ssl = blocks(listener, "ssl_configuration")
        assert ssl, f"listener {name} without TLS"
        protocols = [unq(p) for p in ssl[0]["protocols"]]
        assert protocols and set(protocols) <= {"TLSv1.2", "TLSv1.3"}, protocols
        assert listener["port"] == 443
        assert ssl[0].get("certificate_ids"), "TLS certificate from the Certificates service"


def test_gateway_terminates_tls():
    gw = resources("modules/api_gateway/main.tf", "oci_apigateway_gateway")["this"]
    assert unq(gw["endpoint_type"]) == "PUBLIC" and expr(gw["certificate_id"]) == "var.certificate_id"
    # The gateway's protocol list is the service's (TLS 1.2 and 1.3 only): said in the module.
    assert "TLS 1.2 and TLS 1.3 only" in (ROOT / "modules/api_gateway/main.tf").read_text()


def test_database_url_requires_tls():
    url = [v for k, v in _vault_secret_values().items() if k == "database-url"][0]
    assert "sslmode=require" in url


def _vault_secret_values() -> dict:
    merged = expr(module_call("vault")["secret_values"])
    return dict(re.findall(r'"([a-z-]+)"\s*=\s*"([^\n]*)"', merged))


# ---------------------------------------------------------------------------------------------
# SEC-004: per-IP rate limit at the gateway
# ---------------------------------------------------------------------------------------------
def test_gateway_rate_limit_17_rps_per_client_ip():
    assert math.ceil(1000 / 60) == 17
    assert variable("variables.tf", "rate_limit_requests_per_second")["default"] == 17
    assert not accepted("variables.tf", "rate_limit_requests_per_second", 18)
    dep = resources("modules/api_gateway/main.tf", "oci_apigateway_deployment")["api"]
    rl = blocks(blocks(blocks(dep, "specification")[0], "request_policies")[0], "rate_limiting")[0]
    assert unq(rl["rate_key"]) == "CLIENT_IP"
    assert expr(rl["rate_in_requests_per_second"]) == "var.rate_limit_requests_per_second"
    assert expr(module_call("api_gateway")["rate_limit_requests_per_second"]) == "var.rate_limit_requests_per_second"


def test_gateway_jwt_lets_api_keys_through_and_uses_app_jwks():
    dep = resources("modules/api_gateway/main.tf", "oci_apigateway_deployment")["api"]
    spec = blocks(dep, "specification")[0]
    auth = blocks(blocks(spec, "request_policies")[0], "authentication")[0]
    assert auth["is_anonymous_access_allowed"] is True
    keys = blocks(auth, "public_keys")[0]
    assert unq(keys["type"]) == "REMOTE_JWKS" and expr(keys["uri"]) == "local.jwks_uri"
    text = (ROOT / "modules/api_gateway/main.tf").read_text()
    assert 'jwks_uri = "https://${var.api_hostname}/.well-known/jwks.json"' in text
    for route in blocks(spec, "routes"):
        authz = blocks(blocks(route, "request_policies")[0], "authorization")[0]
        assert unq(authz["type"]) == "ANONYMOUS"


# ---------------------------------------------------------------------------------------------
# SEC-007: NSG rules
# ---------------------------------------------------------------------------------------------
def _nsg_rules() -> list[dict]:
    rules = []
    owners = {"var.nsg_ids[0]": "gateway", "var.db_nsg_id": "db"}
    for rel in ("modules/network/nsg.tf", "modules/api_gateway/main.tf", "modules/bastion/main.tf"):
        for name, body in resources(rel, "oci_core_network_security_group_security_rule").items():
            nsg = expr(body["network_security_group_id"])
            m = re.search(r'this\[(?:"(\w+)"|(each\.key))\]', nsg)
            owner = (m.group(1) or m.group(2)) if m else owners.get(nsg, nsg)
            peer_key = "source" if unq(body["direction"]) == "INGRESS" else "destination"
            peer = expr(body[peer_key])
            pm = re.search(r'this\[(?:"(\w+)"|(each\.key))\]', peer)
            rules.append({
                "name": name, "nsg": owner, "direction": unq(body["direction"]),
                "peer": (pm.group(1) or pm.group(2)) if pm else peer, "peer_type": unq(body[f"{peer_key}_type"]),
                "ports": port_range(body), "for_each": expr(body.get("for_each", "")),
                "protocol": unq(body["protocol"]), "stateless": body.get("stateless"),
            })
    return rules


def test_nsg_rules_are_stateful_tcp_with_one_port():
    for r in _nsg_rules():
        assert r["protocol"] == "6" and r["stateless"] is False, r
        assert r["ports"] is not None and r["ports"][0] == r["ports"][1], r


def test_nsg_lb_reaches_api_only():
    lb_out = [r for r in _nsg_rules() if r["nsg"] == "lb" and r["direction"] == "EGRESS"]
    assert len(lb_out) == 1 and lb_out[0]["peer"] == "api" and lb_out[0]["peer_type"] == "NETWORK_SECURITY_GROUP"
    assert lb_out[0]["ports"] == ("${var.app_port}", "${var.app_port}")
    api_in = [r for r in _nsg_rules() if r["nsg"] == "api" and r["direction"] == "INGRESS"]
    from_nsgs = [r for r in api_in if r["peer_type"] == "NETWORK_SECURITY_GROUP"]
    assert [r["peer"] for r in from_nsgs] == ["lb"]
    # Anything else into api is the ops scrape, empty by default.
    others = [r for r in api_in if r["peer_type"] != "NETWORK_SECURITY_GROUP"]
    assert all(r["name"] == "ops_scrape" for r in others)
    assert variable("variables.tf", "ops_scrape_cidrs")["default"] == []


BASTION_PEER = "${oci_bastion_bastion.this.private_endpoint_ip_address}/32"


def test_nsg_db_reachable_from_api_worker_and_bastion_on_5432_only():
    rules = _nsg_rules()
    db_in = sorted((r for r in rules if r["nsg"] == "db" and r["direction"] == "INGRESS"), key=lambda r: r["name"])
    assert [r["name"] for r in db_in] == ["db_in_app", "db_in_bastion"], db_in
    app, bastion = db_in
    assert app["peer_type"] == "NETWORK_SECURITY_GROUP" and app["peer"] == "each.key"
    assert app["for_each"] == 'toset(["api", "worker"])'
    # The bastion's private endpoint, one address (oci_bastion_bastion takes no NSG).
    assert bastion["peer_type"] == "CIDR_BLOCK" and unq(bastion["peer"]) == BASTION_PEER and not bastion["for_each"]
    assert all(r["ports"] == (5432, 5432) and r["stateless"] is False for r in db_in)
    assert expr(module_call("bastion")["db_nsg_id"]) == "module.network.nsg_ids.db"
    assert not [r for r in rules if r["nsg"] == "db" and r["direction"] == "EGRESS"], "the db starts nothing"
    to_db = [r for r in rules if r["direction"] == "EGRESS" and r["peer"] == "db"]
    assert len(to_db) == 1 and to_db[0]["for_each"] == 'toset(["api", "worker"])' and to_db[0]["ports"] == (5432, 5432)
    # The db subnet's security list: the bastion endpoint's one way out, 5432 inside the subnet.
    sl = resources("modules/network/main.tf", "oci_core_security_list")["db"]
    assert not blocks(sl, "ingress_security_rules")
    (egress,) = blocks(sl, "egress_security_rules")
    assert expr(egress["destination"]) == "local.db_cidr" and unq(egress["protocol"]) == "6" and egress["stateless"] is False
    tcp = blocks(egress, "tcp_options")[0]
    assert (tcp["min"], tcp["max"]) == (5432, 5432)


def test_bastion_reaches_the_db_subnet_from_allowed_clients_only():
    b = resources("modules/bastion/main.tf", "oci_bastion_bastion")["this"]
    assert unq(b["bastion_type"]) == "STANDARD" and b["max_session_ttl_in_seconds"] == 3600
    assert expr(b["target_subnet_id"]) == "var.target_subnet_id" and expr(b["client_cidr_block_allow_list"]) == "var.client_cidrs"
    call = module_call("bastion")
    assert expr(call["target_subnet_id"]) == "module.network.db_subnet_id"
    assert expr(call["client_cidrs"]) == "var.bastion_client_cidrs"
    assert "default" not in variable("variables.tf", "bastion_client_cidrs"), "no default that opens the world"
    for world in (["0.0.0.0/0"], ["203.0.113.10/32", "0.0.0.0/0"], ["::/0"], [], ["not-a-cidr"]):
        assert not accepted("variables.tf", "bastion_client_cidrs", world), world
    assert accepted("variables.tf", "bastion_client_cidrs", ["203.0.113.10/32", "198.51.100.0/24"])
    # The module refuses the world again (one combined condition).
    cond = expr(validations("modules/bastion/variables.tf", "client_cidrs")[0])
    assert '!endswith(c, "/0")' in cond and "length(var.client_cidrs) >= 1" in cond
    outputs = labelled(doc("outputs.tf")["output"], "bastion_id")
    assert expr(outputs["value"]) == "module.bastion.bastion_id"
    labelled(doc("outputs.tf")["output"], "database_endpoint_ip")


def test_migrations_run_from_the_pipeline_not_a_container_instance():
    instances = resources("modules/worker/main.tf", "oci_container_instances_container_instance")
    assert "migrate" not in instances
    assert "alarm_migrate" not in (ROOT / "variables.tf").read_text()
    text = (ROOT / "modules/bastion/main.tf").read_text()
    assert "alarm-migrate up" in text and "alarm-migrate status --check" in text and "alarm-migrate restore" in text


def test_nsg_public_ingress_is_443_only():
    for r in _nsg_rules():
        if r["direction"] == "INGRESS" and r["peer_type"] == "CIDR_BLOCK" and r["name"] != "ops_scrape":
            if r["name"] == "db_in_bastion":  # the bastion's private endpoint (/32), not the internet
                assert r["nsg"] == "db" and unq(r["peer"]) == BASTION_PEER and r["ports"] == (5432, 5432), r
                continue
            assert r["nsg"] in ("lb", "gateway") and r["ports"] == (443, 443), r
    worker_in = [r for r in _nsg_rules() if r["nsg"] == "worker" and r["direction"] == "INGRESS"]
    assert all(r["name"] == "ops_scrape" for r in worker_in)


def test_no_public_database_endpoint():
    subnet = resources("modules/network/main.tf", "oci_core_subnet")["db"]
    assert subnet["prohibit_public_ip_on_vnic"] is True and subnet["prohibit_internet_ingress"] is True
    rt = resources("modules/network/main.tf", "oci_core_route_table")["db"]
    assert not blocks(rt, "route_rules"), "the db subnet routes nowhere"
    db = resources("modules/database/main.tf", "oci_psql_db_system")["this"]
    net = blocks(db, "network_details")[0]
    assert expr(net["subnet_id"]) == "var.subnet_id" and net["is_reader_endpoint_enabled"] is False
    assert expr(module_call("database")["subnet_id"]) == "module.network.db_subnet_id"
    assert module_call("database")["nsg_ids"] == ["${module.network.nsg_ids.db}"]


# ---------------------------------------------------------------------------------------------
# SEC-003: no secret in the repository
# ---------------------------------------------------------------------------------------------
SECRETISH = re.compile(r"password|secret|_key$|keys$|token", re.I)


def test_secret_variables_have_no_default_and_are_sensitive():
    checked = 0
    for path in tf_files():
        for entry in doc(str(path.relative_to(ROOT))).get("variable", []):
            for label, body in entry.items():
                name = unq(label)
                if not SECRETISH.search(name) or name in ("secret_names",) or name.endswith("_id") or name.endswith("_ids"):
                    continue
                checked += 1
                if "default" in body:
                    assert unq(body["default"]) in ("", None), f"{path}: {name} has a default"
                if name not in ("backup_keep_days",):
                    assert body.get("sensitive") is True, f"{path}: {name} is not sensitive"
    assert checked >= 6


def test_no_secret_looking_literals():
    patterns = {
        "PEM block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n?\s*[A-Za-z0-9+/]{20}"),
        "OCID literal": re.compile(r"ocid1\.[a-z]+\.oc1\.[a-z0-9-]*\.[a-z0-9]{20,}"),
        "AWS-style key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
        "password literal": re.compile(r'\b(password|secret|token|api_key|private_key|client_secret|content)\s*=\s*"(?!\$\{)[^"]{6,}"', re.I),
        "long base64": re.compile(r'"[A-Za-z0-9+/]{40,}={0,2}"'),
    }
    for path in list(tf_files()) + [ROOT / "backend.hcl.example"]:
        text = path.read_text()
        for what, pat in patterns.items():
            for m in pat.finditer(text):
                line = text[: m.start()].count("\n") + 1
                raise AssertionError(f"{path.relative_to(ROOT)}:{line}: {what}: {m.group(0)[:40]}")


def test_apps_get_vault_references_not_values():
    text = (ROOT / "main.tf").read_text()
    for setting in ("DATABASE_URL", "DATA_ENCRYPTION_KEYS", "STORAGE_SECRET_ACCESS_KEY", "JWT_SECRET_KEY", "JWT_RSA_KEYS"):
        m = re.search(rf"^\s*{setting}\s*=\s*(.+)$", text, re.M)
        assert m and m.group(1).startswith('module.vault.references["'), setting
    assert 'value       = { for name, s in oci_vault_secret.app : name => "{vault:oci:${s.id}}" }' in (
        ROOT / "modules/vault/outputs.tf").read_text()


# ---------------------------------------------------------------------------------------------
# REQ-002: Autonomous Database off and refused
# ---------------------------------------------------------------------------------------------
def test_autonomous_database_off_and_refused():
    var = variable("variables.tf", "enable_autonomous_database")
    assert var["default"] is False
    assert accepted("variables.tf", "enable_autonomous_database", False)
    assert not accepted("variables.tf", "enable_autonomous_database", True)
    assert not accepted("modules/database/variables.tf", "enable_autonomous_database", True)
    adb = resources("modules/database/main.tf", "oci_database_autonomous_database")["refused"]
    assert expr(adb["count"]) == "var.enable_autonomous_database ? 1 : 0"


# ---------------------------------------------------------------------------------------------
# REQ-001 and the worker
# ---------------------------------------------------------------------------------------------
def test_function_runs_alarm_http_with_network_db_and_object_storage():
    fns = resources("modules/functions/main.tf", "oci_functions_function")
    assert list(fns) == ["alarm_http"]
    assert expr(fns["alarm_http"]["for_each"]) == "var.images" and expr(fns["alarm_http"]["image"]) == "each.value"
    assert expr(module_call("functions")["images"]) == "var.http_images"
    assert expr(module_call("functions")["config"]) == "local.http_env"
    text = (ROOT / "main.tf").read_text()
    assert re.search(r'STORAGE_BACKEND\s*=\s*"oci"', text)
    assert re.search(r'DATABASE_URL\s*=\s*module\.vault\.references\["database-url"\]', text)
    assert 'OCI_AUTH                  = "resource_principal"' in text


def test_worker_is_a_container_instance_not_a_function():
    workers = resources("modules/worker/main.tf", "oci_container_instances_container_instance")
    assert "worker" in workers
    container = blocks(workers["worker"], "containers")[0]
    assert expr(container["image_url"]) == "var.worker_image"
    assert expr(module_call("worker")["worker_image"]) == "var.images.alarm_worker"
    assert not any("worker" in expr(f.get("image", "")) for f in resources("modules/functions/main.tf", "oci_functions_function").values())
    assert unq(workers["worker"]["container_restart_policy"]) == "ALWAYS"


def test_lb_health_check_is_health_ready():
    bs = resources("modules/load_balancer/main.tf", "oci_load_balancer_backend_set")["http"]
    hc = blocks(bs, "health_checker")[0]
    assert unq(hc["url_path"]) == "/health/ready" and hc["return_code"] == 200


# ---------------------------------------------------------------------------------------------
# GUD-002: blue-green releases of alarm-http
# ---------------------------------------------------------------------------------------------
COLORS = {"blue", "green"}


def test_live_color_validates_blue_or_green():
    var = variable("variables.tf", "live_color")
    assert unq(var["default"]) == "blue"
    for color in ("blue", "green"):
        assert accepted("variables.tf", "live_color", color)
    for other in ("", "Blue", "red", "canary"):
        assert not accepted("variables.tf", "live_color", other), other
    for rel in ("modules/api_gateway/variables.tf", "modules/load_balancer/variables.tf"):
        assert not accepted(rel, "live_color", "red") and accepted(rel, "live_color", "green"), rel
    images = variable("variables.tf", "http_images")
    assert set(re.findall(r"\b(blue|green)\s*=", str(images["type"]))) == COLORS
    assert ":latest" in expr(validations("variables.tf", "http_images")[0])
    assert "alarm_http" not in str(variable("variables.tf", "images")["type"])


def test_both_colors_are_defined():
    # functions mode: one function per color, one application.
    fn = resources("modules/functions/main.tf", "oci_functions_function")["alarm_http"]
    assert expr(fn["for_each"]) == "var.images" and "each.key" in fn["display_name"]
    assert "alarm-http-${each.key}" in fn["display_name"]
    assert len(resources("modules/functions/main.tf", "oci_functions_application")) == 1
    assert "blue" in expr(validations("modules/functions/variables.tf", "images")[0])
    assert "green" in expr(validations("modules/functions/variables.tf", "images")[0])
    # containers mode: instances and backend sets per color.
    lb = "modules/load_balancer/main.tf"
    bs = resources(lb, "oci_load_balancer_backend_set")["http"]
    assert expr(bs["for_each"]) == "local.colors" and unq(bs["name"]) == "http-${each.key}"
    assert 'colors = toset(["blue", "green"])' in (ROOT / lb).read_text()
    for each_bs in (bs,):
        hc = blocks(each_bs, "health_checker")[0]
        assert unq(hc["url_path"]) == "/health/ready"
    ci = resources(lb, "oci_container_instances_container_instance")["http"]
    assert expr(ci["for_each"]) == "local.http_instances"
    assert expr(blocks(ci, "containers")[0]["image_url"]) == "var.images[each.value.color]"
    assert "${each.key}" in ci["display_name"]
    backend = resources(lb, "oci_load_balancer_backend")["http"]
    assert expr(backend["backendset_name"]) == "oci_load_balancer_backend_set.http[each.value.color].name"
    assert expr(module_call("load_balancer")["images"]) == "var.http_images"
    assert expr(module_call("load_balancer")["instance_count"]) == "var.http_instance_count"


PREVIEW_TOKEN = "${var.preview_token}"


def _gateway_route_backend() -> dict:
    dep = resources("modules/api_gateway/main.tf", "oci_apigateway_deployment")["api"]
    (route,) = blocks(blocks(dep, "specification")[0], "routes")
    return blocks(route, "backend")[0]


def test_default_route_and_listener_follow_live_color():
    backend = _gateway_route_backend()
    assert unq(backend["type"]) == "DYNAMIC_ROUTING_BACKEND"
    defaults = [rb for rb in blocks(backend, "routing_backends") if blocks(rb, "key")[0].get("is_default") is True]
    assert len(defaults) == 1
    assert expr(blocks(defaults[0], "backend")[0]["function_id"]) == "var.function_ids[var.live_color]"
    assert expr(module_call("api_gateway")["live_color"]) == "var.live_color"
    assert expr(module_call("api_gateway")["function_ids"]) == "module.functions[0].function_ids"
    listener = resources("modules/load_balancer/main.tf", "oci_load_balancer_listener")["https"]
    assert expr(listener["default_backend_set_name"]) == "oci_load_balancer_backend_set.http[var.live_color].name"
    assert expr(listener["routing_policy_name"]) == "oci_load_balancer_load_balancer_routing_policy.deploy_color.name"
    assert expr(module_call("load_balancer")["live_color"]) == "var.live_color"


def test_preview_header_is_x_deploy_color():
    backend = _gateway_route_backend()
    source = blocks(backend, "selection_source")[0]
    assert unq(source["type"]) == "SINGLE" and unq(source["selector"]) == "request.headers[X-Deploy-Color]"
    keyed = {}
    for rb in blocks(backend, "routing_backends"):
        key = blocks(rb, "key")[0]
        if key.get("is_default") is True:
            continue
        assert unq(key["type"]) == "ANY_OF"
        keyed[unq(key["name"])] = ([unq(v) for v in key["values"]], expr(blocks(rb, "backend")[0]["function_id"]))
    # The value is <color>:<preview_token>: a bare color (or a wrong token) reaches live_color.
    assert keyed == {c: ([f"{c}:{PREVIEW_TOKEN}"], f'var.function_ids["{c}"]') for c in COLORS}, keyed
    policy = resources("modules/load_balancer/main.tf", "oci_load_balancer_load_balancer_routing_policy")["deploy_color"]
    rules = {}
    for rule in blocks(policy, "rules"):
        m = re.fullmatch(r"all\(http\.request\.headers\[\(i 'X-Deploy-Color'\)\] eq '(\w+):"
                         + re.escape(PREVIEW_TOKEN) + r"'\)", unq(rule["condition"]))
        assert m, rule["condition"]
        assert unq(rule["name"]) == f"preview_{m.group(1)}", "rule names carry the color only"
        (action,) = blocks(rule, "actions")
        assert unq(action["name"]) == "FORWARD_TO_BACKENDSET"
        rules[m.group(1)] = expr(action["backend_set_name"])
    assert rules == {c: f'oci_load_balancer_backend_set.http["{c}"].name' for c in COLORS}, rules


def test_preview_token_is_sensitive_without_default_and_validated():
    for rel in ("variables.tf", "modules/api_gateway/variables.tf", "modules/load_balancer/variables.tf"):
        var = variable(rel, "preview_token")
        assert var.get("sensitive") is True and "default" not in var, rel
        assert validations(rel, "preview_token"), rel
        for good in ("a" * 32, "A1_-" * 8, "Z9" * 64):
            assert accepted(rel, "preview_token", good), (rel, good)
        for bad in ("", "green", "a" * 31, "a" * 129, "a" * 31 + "'", "a" * 31 + " ", "a" * 31 + ":", "a" * 31 + ")"):
            assert not accepted(rel, "preview_token", bad), (rel, bad)
    for call in ("api_gateway", "load_balancer"):
        assert expr(module_call(call)["preview_token"]) == "var.preview_token", call
    # Nothing iterates over keys built from the token: routing keys and rules are per color.
    for rel in ("modules/api_gateway/main.tf", "modules/load_balancer/main.tf"):
        for line in (ROOT / rel).read_text().splitlines():
            if "preview_token" in line and not line.lstrip().startswith("#"):
                assert not re.match(r"\s*(for_each|count|name)\s*=", line), f"{rel}: {line.strip()}"


def test_smtp_condition_is_nonsensitive_boolean():
    text = (ROOT / "main.tf").read_text()
    uses = [line.strip() for line in text.splitlines() if "var.smtp_password" in line and not line.strip().startswith("#")]
    assert len(uses) == 3, uses
    for line in uses:
        assert line.startswith('nonsensitive(var.smtp_password != "") ?'), line


# ---------------------------------------------------------------------------------------------
# SEC-005: the backups bucket (full database dumps) is the backup job's alone
# ---------------------------------------------------------------------------------------------
def test_apps_dynamic_group_policy_does_not_mention_backups_bucket():
    apps = resources("modules/iam/main.tf", "oci_identity_policy")["apps"]
    for statement in apps["statements"]:
        assert "backups" not in statement, statement
    groups = resources("modules/iam/main.tf", "oci_identity_dynamic_group")
    assert "compartment.id" in groups["containers"]["matching_rule"]


def test_backup_job_has_its_own_write_only_principal():
    worker = "modules/worker/main.tf"
    dg = resources(worker, "oci_identity_dynamic_group")["backup"]
    assert expr(dg["compartment_id"]) == "var.tenancy_id"
    assert unq(dg["matching_rule"]) == (
        "ALL {resource.type = 'computecontainerinstance', "
        "resource.id = '${oci_container_instances_container_instance.backup.id}'}")
    (statement,) = resources(worker, "oci_identity_policy")["backup"]["statements"]
    statement = unq(statement)
    assert statement.startswith("Allow dynamic-group ${oci_identity_dynamic_group.backup.name} to manage objects ")
    assert "target.bucket.name = '${var.backups_bucket}'" in statement
    assert set(re.findall(r"request\.permission = '(\w+)'", statement)) == {"OBJECT_CREATE", "OBJECT_INSPECT"}
    assert expr(module_call("worker")["tenancy_id"]) == "var.tenancy_ocid"
    # The schedule may start/stop (use), not create or delete (manage) container instances.
    (sched,) = resources(worker, "oci_identity_policy")["scheduler"]["statements"]
    sched = unq(sched)
    assert "to use compute-container-instances " in sched and "manage" not in sched
    assert "request.principal.id = '${oci_resource_scheduler_schedule.backup.id}'" in sched
    assert "COMPUTE_CONTAINER_INSTANCE_START" in sched and "DELETE" not in sched and "CREATE" not in sched


def test_backup_uploader_uploads_the_data_file_and_its_sidecars_by_name():
    (loc,) = [entry for entry in doc("modules/worker/main.tf")["locals"] if "upload_script" in entry]
    script = loc["upload_script"]
    assert "/backups/*.pgdump.sha256" in script and "stem=$${sum%.sha256}" in script
    assert '[ -f "$stem" ]' in script, "waits for the data file (renamed last)"
    assert 'for f in "$stem" "$stem.json" "$stem.sha256"; do' in script
    assert '"$stem".*' not in script and ".partial" not in script
    assert "--no-overwrite" in script and "720" in script
    backup = resources("modules/worker/main.tf", "oci_container_instances_container_instance")["backup"]
    upload = [c for c in blocks(backup, "containers") if unq(c["display_name"]) == "upload"][0]
    assert unq(upload["environment_variables"]["HOME"]) == "/tmp"
    mounts = {unq(m["mount_path"]): m for m in blocks(upload, "volume_mounts")}
    assert mounts["/backups"]["is_read_only"] is True and "/tmp" in mounts


# ---------------------------------------------------------------------------------------------
# REQ-007 / GUD-004: every app alert is mapped or said to stay in Prometheus
# ---------------------------------------------------------------------------------------------
def test_every_app_alert_is_accounted_for_in_monitoring():
    alerts = re.findall(r"^\s*- alert: (\w+)", ALERT_RULES.read_text(), re.M)
    assert len(alerts) >= 10
    text = (ROOT / "modules/monitoring/main.tf").read_text()
    missing = [a for a in alerts if a not in text]
    assert not missing, f"alerts neither mapped nor listed as Prometheus-only: {missing}"
    assert "OCI Monitoring does NOT scrape" in text
    namespaces = set(re.findall(r'namespace = "(oci_\w+)"', text))
    assert {"oci_apigateway", "oci_faas", "oci_lbaas", "oci_postgresql", "oci_computecontainerinstance"} <= namespaces


# ---------------------------------------------------------------------------------------------
def main() -> int:
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - report every failure
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
