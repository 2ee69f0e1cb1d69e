"""Build every lab for GitHub Classroom in one command: template repositories, their
autograding workflows and the secrets that hold the hidden checks.

    python labs/publish.py --out labs/dist --org MY-ORG [--course-url git+https://...] [--apply]

1. Builds and grades every lab (``check_labs.py --out``); stops unless every reference
   solution scores full marks and every student version does not.
2. Gives each lab its own organisation secret, ``OTTER_AUTOGRADER_<LAB>`` (a student's
   repository is made from the template, and repository secrets are not copied with it, so
   the secrets live in the organisation), and points that lab's workflow at it.
3. Writes ``OUT/<lab>/secret.b64`` (the autograder zip, base64) and ``OUT/set-secrets.sh``,
   the ``gh secret set`` commands for all labs; ``--apply`` runs them (GitHub's ``gh``
   command, logged in as an organisation owner).

Then make each ``OUT/<lab>/student/`` a template repository (all of it, ``.github/``
included) and create the assignments from them (labs/INSTRUCTORS.md).
"""

from __future__ import annotations

import argparse
import base64
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_labs  # noqa: E402

WORKFLOW_SECRET = "secrets.OTTER_AUTOGRADER_B64"
MISSING_SECRET = "the OTTER_AUTOGRADER_B64 secret"  # the workflow's error when it is not set


def secret_name(lab: str) -> str:
    return "OTTER_AUTOGRADER_" + lab.upper().replace("-", "_")


def publish_lab(lab_dir: Path, lab: str) -> tuple:
    """Point the lab's workflow at its own secret and write the secret's value.
    Returns ``(secret name, path of the value)``."""
    workflow = lab_dir / "student" / ".github" / "workflows" / "classroom.yml"
    text = workflow.read_text()
    if WORKFLOW_SECRET not in text:
        raise SystemExit(f"{workflow}: does not read {WORKFLOW_SECRET}")
    name = secret_name(lab)
    text = text.replace(WORKFLOW_SECRET, f"secrets.{name}").replace(MISSING_SECRET, f"the {name} secret")
    workflow.write_text(text)
    zips = sorted((lab_dir / "autograder").glob("*-autograder_*.zip"))
    if len(zips) != 1:
        raise SystemExit(f"{lab_dir / 'autograder'}: expected one autograder zip, found {len(zips)}")
    value = lab_dir / "secret.b64"
    value.write_text(base64.b64encode(zips[0].read_bytes()).decode())
    return name, value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="where the labs are written")
    ap.add_argument("--org", default="ORG", help="the classroom's GitHub organisation")
    ap.add_argument("--course-url", help="pip URL the students' requirements install timewait from")
    ap.add_argument("--apply", action="store_true", help="run the gh secret set commands")
    args = ap.parse_args(argv)

    build = ["--out", str(args.out)] + (["--course-url", args.course_url] if args.course_url else [])
    if check_labs.main(build) != 0:
        print("publish: the labs did not pass their checks; nothing published")
        return 1
    out = args.out.resolve()
    commands = []
    for lab, master in check_labs.find_labs():
        name, value = publish_lab(out / master.parent.name, lab)
        commands.append(
            f"gh secret set {name} --org {shlex.quote(args.org)} --visibility all "
            f"< {shlex.quote(str(value.relative_to(out)))}"
        )
        print(f"{lab}: template {out / master.parent.name / 'student'}, secret {name}")
    script = out / "set-secrets.sh"
    script.write_text(
        "#!/bin/sh\n# The labs' autograder zips as organisation secrets.\nset -e\n"
        'cd "$(dirname "$0")"\n' + "\n".join(commands) + "\n"
    )
    script.chmod(0o755)
    print(f"secrets: {script}" + ("" if args.apply else " (run it, or publish.py --apply)"))
    if args.apply:
        return subprocess.run(["sh", str(script)]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
