"""Every command in README "Deploying" and docs/deploying.md is checked here, and so is their order.

- `copilot ...`: the subcommand and every flag must exist in Copilot v1.34's CLI. COPILOT below
  lists, per subcommand, the flags its source registers and the file (aws/copilot-cli, mirror at
  v1.33.2-5-g4c858e718, the CLI surface v1.34.x shipped) with the behaviour the docs rely on.
- `flask wwhd ...` (run in the api task with `copilot svc exec`): run here against the real app.
- `scripts/smoke ...`: its flags must be the script's (the script itself: test_smoke_script.py).
- `aws ...` and `git ...`: only the listed subcommands and flags (AWS CLI v2 reference).
- The first-deploy steps appear in the order that works.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "deploying.md"
README = ROOT / "README.md"

# (subcommand) -> (flags, positional arguments allowed, source and behaviour relied on)
COPILOT: dict[tuple[str, ...], tuple[set[str], int, str]] = {
    # Use: "init [name]"; --domain only here: "a Route 53 domain name can only be associated
    # when running copilot app init" (site/content/docs/developing/domain.en.md).
    ("app", "init"): ({"domain"}, 1, "internal/pkg/cli/app_init.go"),
    ("app", "delete"): ({"name", "yes"}, 0, "internal/pkg/cli/app_delete.go"),
    # An existing copilot/environments/<env>/manifest.yml is kept: "Manifest file for
    # environment %s already exists at %s, skipping writing it." (env_init.go).
    ("env", "init"): (
        {"name", "profile", "default-config", "import-cert-arns"},
        0,
        "internal/pkg/cli/env_init.go",
    ),
    # ${WWHD_DEV_CERT_ARN} comes from the shell; unset fails with `environment variable "%s"
    # is not defined` (internal/pkg/manifest/interpolate.go).
    ("env", "deploy"): ({"name"}, 0, "internal/pkg/cli/env_deploy.go"),
    ("secret", "init"): ({"name", "values", "overwrite"}, 0, "internal/pkg/cli/secret_init.go"),
    # maybeInitWkld: a workload with a local manifest that the app does not know yet is added
    # (AddWorkloadToApp) before it is deployed. --tag (imageTagFlag) only names a fresh build.
    ("deploy",): ({"name", "env", "tag"}, 0, "internal/pkg/cli/deploy.go"),
    # Named only to say it fails for a job never added ("get repository URI"): job_deploy.go
    # needs the job in the app's store, which only job init / deploy add.
    ("job", "deploy"): ({"name", "env"}, 0, "internal/pkg/cli/job_deploy.go"),
    # With the manifest present: "Manifest file for job %s already exists. Skipping
    # configuration." (job_init.go).
    ("job", "init"): ({"name"}, 0, "internal/pkg/cli/job_init.go"),
    ("job", "run"): ({"name", "env"}, 0, "internal/pkg/cli/job_run.go"),
    ("job", "logs"): ({"name", "env", "since", "follow"}, 0, "internal/pkg/cli/job_logs.go"),
    ("svc", "exec"): ({"name", "env", "command"}, 0, "internal/pkg/cli/svc_exec.go"),
    ("svc", "status"): ({"name", "env"}, 0, "internal/pkg/cli/svc_status.go"),
    ("svc", "logs"): ({"name", "env", "follow", "since"}, 0, "internal/pkg/cli/svc_logs.go"),
    ("svc", "show"): ({"name"}, 0, "internal/pkg/cli/svc_show.go"),
    # What the pipeline's build stage runs (buildspec.yml): stackOutputDirFlag, uploadAssetsFlag.
    ("svc", "package"): (
        {"name", "env", "tag", "output-dir", "upload-assets", "-n", "-e"},
        0,
        "internal/pkg/cli/svc_package.go",
    ),
    # Reads copilot/pipelines/<name>/manifest.yml (ws.ListPipelines, ReadPipelineManifest).
    ("pipeline", "deploy"): ({"name"}, 0, "internal/pkg/cli/pipeline_deploy.go"),
    ("pipeline", "status"): ({"name"}, 0, "internal/pkg/cli/pipeline_status.go"),
}

# AWS CLI v2 reference (awscli.amazonaws.com/v2/documentation/api/latest/reference/...).
AWS = {
    ("ecr", "describe-images"): {"repository-name", "query", "output"},
    ("cloudwatch", "describe-alarms"): {"state-value"},
    # Named in prose only ("Do not use"): test_no_command_that_drifts keeps it out of the steps.
    ("ecs", "update-service"): set(),
}
GIT = {"revert", "commit", "push", "checkout"}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def sources() -> dict[str, str]:
    return {
        "README": _section(README.read_text(), "## Deploying\n"),
        "docs/deploying.md": DOCS.read_text(),
    }


def _block_lines(text: str) -> list[str]:
    lines, in_block, joined = [], False, ""
    for raw in text.splitlines():
        if raw.startswith("```"):
            in_block = raw.strip() in ("```bash", "```sh")
            continue
        if not in_block:
            continue
        line = raw.strip()
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        line, joined = joined + line, ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _inline(text: str) -> list[str]:
    return [
        m
        for m in re.findall(r"`([^`\n]+)`", text)
        if m.split()[0] in ("copilot", "aws", "flask", "scripts/smoke", "git")
    ]


def commands(text: str) -> list[str]:
    """Every shell command: fenced blocks split at && and comments, then inline code spans."""
    out = []
    for line in _block_lines(text) + _inline(text):
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for tok in tokens + ["&&"]:
            if tok in ("&&", ";", "|"):
                if current:
                    out.append(current)
                current = []
            else:
                current.append(tok)
    # Leading VAR=value assignments belong to the command after them.
    cleaned = []
    for cmd in out:
        while cmd and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", cmd[0]):
            cmd = cmd[1:]
        if cmd:
            cleaned.append(cmd)
    return [shlex.join(c) for c in cleaned]


def commands_in_blocks(text: str) -> list[str]:
    inline = set(commands("\n".join(f"`{m}`" for m in _inline(text))))
    return [c for c in commands(text) if c not in inline or c in _fenced(text)]


def _fenced(text: str) -> set[str]:
    return set(commands("```bash\n" + "\n".join(_block_lines(text)) + "\n```"))


def _flags(tokens: list[str]) -> tuple[set[str], list[str]]:
    flags, positional = set(), []
    for tok in tokens:
        if tok.startswith("--"):
            flags.add(tok[2:].split("=", 1)[0])
        elif tok.startswith("-") and len(tok) > 1:
            flags.add(tok)
        else:
            positional.append(tok)
    return flags, positional


ALL = [(name, cmd) for name, text in sources().items() for cmd in commands(text)]


def test_commands_were_found() -> None:
    kinds = {shlex.split(c)[0] for _, c in ALL}
    assert {"copilot", "flask", "scripts/smoke", "aws", "git", "export"} <= kinds, kinds
    assert len(ALL) > 40


@pytest.mark.parametrize("where,cmd", ALL, ids=[f"{w}: {c[:60]}" for w, c in ALL])
def test_every_command_is_known(where: str, cmd: str) -> None:
    tokens = shlex.split(cmd)
    head = tokens[0]
    if head == "copilot":
        if len(tokens) == 1:
            return  # prose naming the tool
        for size in (2, 1):
            key = tuple(tokens[1 : 1 + size])
            if key in COPILOT:
                break
        else:
            pytest.fail(f"{where}: unknown copilot subcommand in {cmd!r}")
        allowed, positional_ok, _source = COPILOT[key]
        flags, positional = _flags(tokens[1 + len(key) :])
        values = _flag_values(tokens)
        assert flags <= allowed, f"{where}: {cmd!r} uses {flags - allowed}"
        assert len(positional) - len(values) <= positional_ok, f"{where}: {cmd!r}"
    elif head == "aws":
        key = tuple(tokens[1:3])
        assert key in AWS, f"{where}: {cmd!r}"
        assert _flags(tokens[3:])[0] <= AWS[key], f"{where}: {cmd!r}"
    elif head == "git":
        assert tokens[1] in GIT, f"{where}: {cmd!r}"
    elif head == "export":
        assert re.fullmatch(r"WWHD_(DEV|STAGING|PROD)_CERT_ARN=.+", tokens[1]), cmd
    elif head == "flask":
        _check_flask(tokens)
    elif head == "scripts/smoke":
        _check_smoke(tokens)
    else:
        pytest.fail(f"{where}: no check for {cmd!r}")


def _flag_values(tokens: list[str]) -> list[str]:
    return [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t.startswith("--")]


def _check_smoke(tokens: list[str]) -> None:
    text = (ROOT / "scripts" / "smoke").read_text()
    flags, positional = _flags(tokens[1:])
    for flag in flags:
        assert f'"--{flag}"' in text, f"scripts/smoke has no --{flag}"
    # Prose may name a flag without the URL; a full command has exactly one https:// URL.
    assert len(positional) <= 1 and all(p.startswith("https://") for p in positional), tokens


def _check_flask(tokens: list[str]) -> None:
    from wwhd.cli import wwhd_cli

    if tokens[1:] == ["db", "upgrade"]:
        return  # run by scripts/entrypoint at every start: tests/deploy/test_entrypoint.py
    assert tokens[1] == "wwhd", tokens
    if len(tokens) == 2:
        return  # prose naming the command group
    command = wwhd_cli.commands[tokens[2]]
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for tok in tokens[3:]:
        if tok.startswith("--"):
            assert tok in known, f"flask wwhd {tokens[2]} has no {tok}"


def svc_exec_commands() -> list[str]:
    found = []
    for _, cmd in ALL:
        tokens = shlex.split(cmd)
        if tokens[:3] == ["copilot", "svc", "exec"] and "--command" in tokens:
            found.append(tokens[tokens.index("--command") + 1])
    return found


def test_svc_exec_commands_run_against_the_real_app(runner, app) -> None:
    """The flask commands the runbook runs in the api task, run here (SQLite, in-memory Qdrant)."""
    seen = set()
    for inner in svc_exec_commands():
        tokens = shlex.split(inner)
        assert tokens[:2] == ["flask", "wwhd"], inner
        args = [
            t.replace("<SMOKE_EMAIL>", "smoke@example.com").replace(
                "<SMOKE_PASSWORD>", "smoke-password-1"
            )
            for t in tokens[1:]
        ]
        if tuple(args) in seen:
            continue
        seen.add(tuple(args))
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (inner, result.output)
    assert {a[1] for a in seen} >= {"create-user", "reconcile", "reindex"}


def test_no_command_that_drifts_or_needs_a_human_after_every_replacement() -> None:
    steps = [(w, c) for w, text in sources().items() for c in commands_in_blocks(text)]
    assert steps
    for where, cmd in steps:
        # ecs update-service changes the service outside CloudFormation; the next pipeline run
        # reverts it. The docs may name it only in prose, never as a step.
        assert "update-service" not in cmd, (where, cmd)
    blocks = "\n".join(_block_lines(t) and "\n".join(_block_lines(t)) for t in sources().values())
    assert "copilot job deploy" not in blocks
    for where, text in sources().items():
        prose = " ".join(text.split())
        assert "api compares SQL and Qdrant at start-up and periodically" in prose, where
        assert "--tag <good-tag>" not in text, where


FIRST_DEPLOY = [
    "copilot app init wwhd",
    "export WWHD_DEV_CERT_ARN=",
    "copilot env init --name dev",
    "copilot env deploy --name dev",
    "copilot secret init --name OPENAI_API_KEY",
    "copilot secret init --name SMOKE_PASSWORD",
    "copilot deploy --name qdrant --env dev",
    "copilot deploy --name api --env dev",
    "copilot deploy --name qdrant-snapshot --env dev",
    "copilot svc exec --name api --env dev --command flask wwhd create-user",
    "scripts/smoke https://",
    "copilot pipeline deploy --name wwhd-main",
]


@pytest.mark.parametrize("where", ["README", "docs/deploying.md"])
def test_first_deploy_steps_in_order(where: str) -> None:
    blocks = [" ".join(shlex.split(c)) for w, c in ALL if w == where]
    positions = []
    for step in FIRST_DEPLOY:
        hits = [i for i, c in enumerate(blocks) if c.startswith(step)]
        assert hits, f"{where}: missing step {step!r}"
        positions.append(hits[0])
    assert positions == sorted(positions), f"{where}: steps out of order"


def test_secrets_created_are_the_secrets_used() -> None:
    created = {
        shlex.split(c)[shlex.split(c).index("--name") + 1]
        for w, c in ALL
        if c.startswith("copilot secret init") and w == "README"
    }
    used = set()
    for manifest in ("api", "qdrant", "qdrant-snapshot"):
        doc = yaml.safe_load((ROOT / "copilot" / manifest / "manifest.yml").read_text())
        used |= {p.rsplit("/", 1)[1] for p in doc["secrets"].values()}
    smoke = (ROOT / "copilot" / "pipelines" / "wwhd-main" / "smoke-buildspec.yml").read_text()
    used |= set(re.findall(r'\$prefix/(\w+)"', smoke))
    assert created == used


def test_certificate_variables_match_environment_manifests() -> None:
    docs = DOCS.read_text()
    for env in ("dev", "staging", "prod"):
        text = (ROOT / "copilot" / "environments" / env / "manifest.yml").read_text()
        (var,) = re.findall(r"\$\{(\w+)\}", text)
        assert var == f"WWHD_{env.upper()}_CERT_ARN"
        assert var in docs
