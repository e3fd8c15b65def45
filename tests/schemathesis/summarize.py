#!/usr/bin/env python3
"""Summarise schemathesis NDJSON reports: one line per distinct failure.

    summarize.py REPORT.ndjson...

schemathesis prints every failing case with its full response; over several runs the same
fault shows up many times. This groups failed checks by operation, check, status and the
problem `code` of the answer (or the first line of the check's message when there is none),
and prints how often each was seen, in which runs, and one request to reproduce it.
Exits 0; run.sh decides about failure from schemathesis' own exit codes.
"""

import base64
import json
import shlex
import sys
from collections import defaultdict


def body_of(response):
    content = response.get("content") or {}
    raw = content.get("$base64")
    if raw is None:
        return None
    try:
        return base64.b64decode(raw).decode("utf-8", "replace")
    except ValueError:
        return None


def problem_code(text):
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value.get("code") if isinstance(value, dict) else None


def curl(request, case):
    """A curl line for the request, without the credentials schemathesis filtered out."""
    parts = ["curl", "-X", request["method"]]
    for name, values in (request.get("headers") or {}).items():
        if name.lower() in ("user-agent", "x-schemathesis-testcaseid", "content-length"):
            continue
        for value in values:
            # schemathesis masks credentials (and anything named like a key) in its reports.
            if value == "[Filtered]":
                value = "Bearer $TOKEN" if name.lower() == "authorization" else "<filtered>"
            parts += ["-H", f"{name}: {value}"]
    body = request.get("body") or {}
    if "$base64" in body:
        data = base64.b64decode(body["$base64"]).decode("utf-8", "backslashreplace")
        parts += ["--data-binary", data]
    parts.append(request["uri"])
    return " ".join(shlex.quote(part) for part in parts)


def main(paths):
    groups = defaultdict(lambda: {"count": 0, "runs": set(), "example": None})
    for path in paths:
        run = path.split("/")[-2] if "/" in path else path
        with open(path, encoding="utf-8") as file:
            for line in file:
                event = json.loads(line)
                finished = event.get("ScenarioFinished")
                if not finished:
                    continue
                recorder = finished.get("recorder") or {}
                label = recorder.get("label", "?")
                interactions = recorder.get("interactions") or {}
                for case_id, checks in (recorder.get("checks") or {}).items():
                    for check in checks:
                        if check.get("status") != "failure":
                            continue
                        failure = (check.get("failure_info") or {}).get("failure") or {}
                        interaction = interactions.get(case_id) or {}
                        response = interaction.get("response") or {}
                        status = response.get("status_code")
                        text = body_of(response)
                        code = problem_code(text)
                        # Cases of a stateful scenario carry their own operation.
                        case = (recorder.get("cases") or {}).get(case_id, {}).get("value", {})
                        operation = f"{case.get('method', '')} {case.get('path', '')}".strip() or label
                        detail = code or (failure.get("message") or "").splitlines()[0][:120]
                        key = (operation, check["name"], status, detail)
                        group = groups[key]
                        group["count"] += 1
                        group["runs"].add(run)
                        if group["example"] is None and interaction.get("request"):
                            group["example"] = (
                                case_id,
                                failure.get("title", ""),
                                failure.get("message", ""),
                                (text or "")[:400],
                                curl(interaction["request"], case),
                            )
    if not groups:
        print("no failed checks")
        return
    print(f"{len(groups)} distinct failures:")
    for (operation, check, status, detail), group in sorted(groups.items(), key=lambda item: item[0][:2]):
        print()
        print(f"* {operation} -- {check} -- status {status} -- {detail}")
        print(f"  seen {group['count']}x in {', '.join(sorted(group['runs']))}")
        if group["example"]:
            case_id, title, message, text, command = group["example"]
            print(f"  {title}: {' / '.join(message.splitlines())[:300]}")
            print(f"  response: {text}")
            print(f"  reproduce: {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
