#!/usr/bin/python3
"""Record Keylime 7.14's verdict on every case of cases.json into keylime-verdicts.json.

Runs an `ima_verify.py` driver (keylime.ima.ima.process_measurement_list, what Keylime's verifier
runs after a quote) once per case, from this directory, with the list, the policy, the PCR 10 value
and the case's keys. Not needed by the tests: they read keylime-verdicts.json.

Usage: /usr/bin/python3 run-keylime.py PATH/TO/ima_verify.py
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    driver = sys.argv[1]
    with open(os.path.join(HERE, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    out = []
    commit = None
    for c in cases:
        name = c["name"]
        with open(os.path.join(HERE, f"{name}.pcrs.json"), encoding="utf-8") as f:
            pcr = json.load(f)["sha256"]["10"]
        args = [f"{name}.ascii", "--policy", f"{name}.policy.json", "--bank", "sha256", "--pcr", pcr]
        for k in c["keys"]:
            args += ["--key", k]
        p = subprocess.run(["/usr/bin/python3", driver, *args], cwd=HERE, capture_output=True, text=True, check=False)
        if p.returncode not in (0, 1):
            print(f"{name}: driver exited {p.returncode}: {p.stderr}", file=sys.stderr)
            return 2
        r = json.loads(p.stdout)
        commit = r["keylime_commit"]
        out.append(
            {
                "name": name,
                "label": c["label"],
                "what": c["what"],
                "command": " ".join(["ima_verify.py", *args]),
                "exit": p.returncode,
                "verdict": r["verdict"],
                "pcr_match": r["pcr_match"],
                "failure_types": r["failure_types"],
                "failures": [
                    {"type": e["type"], "message": e["context"].get("message") if isinstance(e["context"], dict) else e["context"]}
                    for e in r["failures"]
                ],
            }
        )
    doc = {"keylime": {"version": "7.14.3", "commit": commit, "function": "keylime.ima.ima.process_measurement_list"}, "cases": out}
    with open(os.path.join(HERE, "keylime-verdicts.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
