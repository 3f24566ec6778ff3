#!/usr/bin/env python3
"""Summarizes checkov's JSON report (stdin): counts, every failed check; exit 1 on a failure
or a parsing error."""
import json
import sys

reports = json.load(sys.stdin)
reports = reports if isinstance(reports, list) else [reports]
bad = False
for report in reports:
    s = report["summary"]
    print(f"checkov {s['checkov_version']}: passed={s['passed']} failed={s['failed']} "
          f"skipped={s['skipped']} parsing_errors={s['parsing_errors']} resources={s['resource_count']}")
    results = report.get("results", {})
    for f in results.get("failed_checks", []):
        print(f"  FAIL {f['check_id']} {f['resource']} {f['file_path']}:{f['file_line_range'][0]} {f['check_name']}")
    for f in results.get("skipped_checks", []):
        reason = (f.get("check_result") or {}).get("suppress_comment", "")
        print(f"  skip {f['check_id']} {f['resource']}: {reason[:90]}")
    bad = bad or s["failed"] > 0 or s["parsing_errors"] > 0
sys.exit(1 if bad else 0)
