"""Deployment files: Copilot manifests, addons, Dockerfile and serving config stay valid and consistent."""

import copy
import importlib.util
import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from wwhd import config

ROOT = Path(__file__).resolve().parents[2]
COPILOT = ROOT / "copilot"
API = COPILOT / "api" / "manifest.yml"
QDRANT = COPILOT / "qdrant" / "manifest.yml"
PIPELINE = COPILOT / "pipelines" / "wwhd-main" / "manifest.yml"
ADDONS = sorted((COPILOT / "api" / "addons").glob("*.yml"))
ENVS = ("dev", "staging", "prod")
APP = "wwhd"
VENV_BIN = Path(sys.executable).parent
INTERPOLATION = re.compile(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)\}")

# Loaded by path so the test works under any pytest import mode.
_spec = importlib.util.spec_from_file_location(
    "wwhd_copilot_schema", Path(__file__).with_name("copilot_schema.py")
)
copilot_schema = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(copilot_schema)
FARGATE_MEMORY, SCHEMAS = copilot_schema.FARGATE_MEMORY, copilot_schema.SCHEMAS


# --- loading -------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags as {"Fn::X": value}."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_cfn(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def manifest_files() -> list[Path]:
    return sorted(
        [
            COPILOT / ".workspace",
            *COPILOT.glob("*/manifest.yml"),
            *COPILOT.glob("environments/*/manifest.yml"),
            *COPILOT.glob("pipelines/*/manifest.yml"),
        ]
    )


def kind_of(path: Path, doc: dict) -> str:
    if path.name == ".workspace":
        return "Workspace"
    if path.parent.parent.name == "pipelines":
        return "Pipeline"
    return doc.get("type", "<no type>")


def validate(doc: Any, kind: str) -> None:
    jsonschema.validate(doc, SCHEMAS[kind], format_checker=jsonschema.FormatChecker())


def interpolate(value: Any, env: str) -> Any:
    """Copilot's predefined-variable substitution, applied to every string."""
    if isinstance(value, str):
        return value.replace("${COPILOT_APPLICATION_NAME}", APP).replace(
            "${COPILOT_ENVIRONMENT_NAME}", env
        )
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    return value


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Approximates Copilot's ApplyEnv: maps merge, anything else (count included) replaces.

    Like Copilot's imageTransformer (aws/copilot-cli internal/pkg/manifest/transform.go), an
    environment's image.location drops the base image.build and vice versa.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        if key == "image":
            if "location" in override:
                out.pop("build", None)
            if "build" in override:
                out.pop("location", None)
        for k, value in override.items():
            out[k] = value if k == "count" else merge(base.get(k), value, k)
        return out
    return copy.deepcopy(override) if override is not None else base


def for_env(manifest: dict, env: str) -> dict:
    base = {k: v for k, v in manifest.items() if k != "environments"}
    override = (manifest.get("environments") or {}).get(env) or {}
    return interpolate(merge(base, override), env)


def env_var_name(output: str) -> str:
    """Copilot's addon output -> env var rule: UploadsBucketName -> UPLOADS_BUCKET_NAME."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", output).upper()


# --- schema ------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(COPILOT)))
def test_manifest_parses_and_validates(path: Path) -> None:
    doc = load(path)
    kind = kind_of(path, doc)
    assert kind in SCHEMAS, f"{path}: no schema for manifest type {kind!r}"
    validate(doc, kind)


def test_expected_manifests_exist() -> None:
    names = {str(p.relative_to(COPILOT)) for p in manifest_files()}
    assert {
        ".workspace",
        "api/manifest.yml",
        "qdrant/manifest.yml",
        "pipelines/wwhd-main/manifest.yml",
        *(f"environments/{e}/manifest.yml" for e in ENVS),
    } <= names
    assert load(COPILOT / ".workspace") == {"application": APP}


def _set(doc: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    doc[last] = value


def _rename(doc: dict, dotted: str, new: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    doc[new] = doc.pop(last)


MUTATIONS = [
    # (file, kind, mutation) -- each must make validation fail.
    (
        API,
        "Load Balanced Web Service",
        lambda d: _rename(d, "environments.prod.count.cpu_percentage", "cpu_percentge"),
    ),
    (QDRANT, "Backend Service", lambda d: _set(d, "deployment.rolling", "blue-green")),
    (PIPELINE, "Pipeline", lambda d: _rename(d, "stages.2.requires_approval", "require_approval")),
    (API, "Load Balanced Web Service", lambda d: _rename(d, "http.healthcheck", "healthchek")),
    (
        API,
        "Load Balanced Web Service",
        lambda d: _rename(d, "deployment.rollback_alarms", "rollback_alarm"),
    ),
    (API, "Load Balanced Web Service", lambda d: _set(d, "network.conect", True)),
    (API, "Load Balanced Web Service", lambda d: _set(d, "logging.retention", 42)),
    (QDRANT, "Backend Service", lambda d: _set(d, "cpu", 3000)),
    (
        COPILOT / "environments" / "prod" / "manifest.yml",
        "Environment",
        lambda d: _rename(d, "observability.container_insights", "containerinsights"),
    ),
]


@pytest.mark.parametrize(
    "path,kind,mutate",
    MUTATIONS,
    ids=[
        "cpu_percentge",
        "rolling-blue-green",
        "require_approval",
        "healthchek",
        "rollback_alarm",
        "network.conect",
        "retention-42",
        "cpu-3000",
        "containerinsights",
    ],
)
def test_mutated_manifest_fails_validation(path: Path, kind: str, mutate) -> None:
    doc = load(path)
    validate(doc, kind)  # the original is valid...
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, kind)  # ...the typo is not


def _dev_efs(doc: dict) -> dict:
    return doc["environments"]["dev"]["storage"]["volumes"]["data"]["efs"]


# Each rejected by aws/copilot-cli internal/pkg/manifest/validate.go, so the schema must too:
# EFSVolumeConfiguration.validate() ("uid" must not be 0; gid needs uid and uid needs gid;
# uid/gid exclude id/root_dir/auth) and RoutingRule.validate() (version must be GRPC, HTTP1
# or HTTP2 after strings.ToUpper).
COPILOT_REJECTS = {
    "efs-uid-0": lambda d: _dev_efs(d).update(uid=0),
    "efs-uid-without-gid": lambda d: _dev_efs(d).pop("gid"),
    "efs-gid-without-uid": lambda d: _dev_efs(d).pop("uid"),
    "efs-uid-with-byo-id": lambda d: _dev_efs(d).update(id="fs-12345678"),
    "efs-uid-over-uint32": lambda d: _dev_efs(d).update(uid=2**32),
    "http-version-http3": lambda d: d["http"].update(version="http3"),
}


@pytest.mark.parametrize("mutate", COPILOT_REJECTS.values(), ids=COPILOT_REJECTS.keys())
def test_schema_rejects_what_copilot_rejects(mutate) -> None:
    doc = load(API)
    validate(doc, "Load Balanced Web Service")
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "Load Balanced Web Service")


@pytest.mark.parametrize("version", ["grpc", "GRPC", "http1", "HTTP2", "Http2"])
def test_schema_accepts_http_version_in_any_case(version: str) -> None:
    # validate.go compares strings.ToUpper(version) with {"GRPC", "HTTP1", "HTTP2"}.
    doc = load(API)
    doc["http"]["version"] = version
    validate(doc, "Load Balanced Web Service")


def test_manifest_comments_point_at_real_files() -> None:
    for path in manifest_files():
        for ref in re.findall(
            r"(tests/deploy/[\w./-]+|docs/[\w./-]+\.md|scripts/[\w.-]+)", path.read_text()
        ):
            assert (ROOT / ref.rstrip(".,)")).exists(), f"{path}: names missing {ref}"


# --- consistency -------------------------------------------------------------------


def test_fargate_sizes_are_valid_pairs() -> None:
    for path in (API, QDRANT):
        manifest = load(path)
        for env in ENVS:
            cfg = for_env(manifest, env)
            cpu, memory = cfg["cpu"], cfg["memory"]
            assert memory in FARGATE_MEMORY.get(cpu, set()), (
                f"{path.parent.name}/{env}: cpu {cpu} with memory {memory} is not a Fargate size"
            )


def test_api_sizes_and_scaling_follow_the_seed_table() -> None:
    api = load(API)
    expected = {"dev": (1024, 2048), "staging": (2048, 4096), "prod": (4096, 8192)}
    for env, size in expected.items():
        cfg = for_env(api, env)
        assert (cfg["cpu"], cfg["memory"]) == size, env
        if env == "dev":
            assert cfg["count"] == 1
        else:
            assert cfg["count"]["range"] == "2-10"
            assert cfg["count"]["cpu_percentage"] == 70


def test_healthcheck_path_is_the_liveness_route() -> None:
    api = load(API)
    assert api["http"]["healthcheck"]["path"] == "/health"
    assert api["image"]["port"] == 8000


def test_healthcheck_path_served_by_app(client) -> None:
    path = load(API)["http"]["healthcheck"]["path"]
    assert client.get(path).status_code == 200


def _addon_env_vars() -> set[str]:
    """Env vars Copilot injects from addon outputs (managed policies are attached, not injected)."""
    names = set()
    for path in ADDONS:
        tpl = load_cfn(path)
        resources = tpl["Resources"]
        for name, output in (tpl.get("Outputs") or {}).items():
            ref = output["Value"].get("Ref") if isinstance(output["Value"], dict) else None
            if ref and resources.get(ref, {}).get("Type") == "AWS::IAM::ManagedPolicy":
                continue
            names.add(env_var_name(name))
    return names


def _provided(env: str) -> set[str]:
    cfg = for_env(load(API), env)
    return set(cfg.get("variables") or {}) | set(cfg.get("secrets") or {}) | _addon_env_vars()


def _alternatives(item: Any) -> list[str]:
    if isinstance(item, (tuple, list, set, frozenset)):
        return [str(x) for x in item]
    return [s.strip() for s in re.split(r"\||\bor\b|-or-", str(item)) if s.strip()]


def test_required_env_vars_provided_by_api_manifest() -> None:
    required = config.REQUIRED_IN_PRODUCTION
    assert required, "REQUIRED_IN_PRODUCTION is empty"
    for env in ENVS:
        provided = _provided(env)
        missing = [
            item for item in required if not any(name in provided for name in _alternatives(item))
        ]
        assert not missing, f"{env}: api manifest does not provide {missing}"


def test_contract_env_vars_present_even_before_app_exists() -> None:
    # The minimum the brief names; the app-driven test above is the authority.
    for env in ENVS:
        provided = _provided(env)
        for name in (
            "JWT_SECRET",
            "OPENAI_API_KEY",
            "QDRANT_URL",
            "QDRANT_API_KEY",
            "UPLOADS_BUCKET_NAME",
            "APP_ENV",
        ):
            assert name in provided, f"{env}: {name}"
        assert {"DATABASE_URL", "DB_SECRET"} & provided, env
    secrets = load(API)["secrets"]
    assert {"OPENAI_API_KEY", "JWT_SECRET", "QDRANT_API_KEY"} <= set(secrets)
    # Staging/prod must use PostgreSQL (DB_SECRET): SQLite on NFS with many writers corrupts.
    for env in ("staging", "prod"):
        assert "DATABASE_URL" not in (for_env(load(API), env).get("variables") or {})


def _alarm_names(env: str, name: str) -> set[str]:
    names = set()
    for path in ADDONS:
        for resource in load_cfn(path)["Resources"].values():
            if resource["Type"] != "AWS::CloudWatch::Alarm":
                continue
            alarm = resource["Properties"]["AlarmName"]
            template = alarm["Fn::Sub"] if isinstance(alarm, dict) else alarm
            names.add(
                template.replace("${App}", APP).replace("${Env}", env).replace("${Name}", name)
            )
    return names


def test_rollback_alarms_exist_in_alarms_addon() -> None:
    api = load(API)
    for env in ENVS:
        alarms = for_env(api, env)["deployment"]["rollback_alarms"]
        assert alarms, env
        missing = set(alarms) - _alarm_names(env, api["name"])
        assert not missing, f"{env}: rollback alarms not created by addons: {missing}"


def test_alarms_cover_latency_5xx_and_4xx() -> None:
    tpl = load_cfn(COPILOT / "api" / "addons" / "alarms.yml")
    alarms = [
        r["Properties"] for r in tpl["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    latency = [a for a in alarms if a.get("MetricName") == "RequestLatency"]
    assert latency and latency[0]["Namespace"] == "WWHD/API"
    assert latency[0]["ExtendedStatistic"] == "p95" and latency[0]["Threshold"] == 5000
    metric_names = {
        m["MetricStat"]["Metric"]["MetricName"]
        for a in alarms
        for m in a.get("Metrics", [])
        if "MetricStat" in m
    }
    assert {"HTTPCode_Target_5XX_Count", "HTTPCode_Target_4XX_Count"} <= metric_names


def test_qdrant_url_matches_qdrant_service() -> None:
    qdrant = load(QDRANT)
    connect = qdrant["network"]["connect"]
    assert connect, "qdrant must join Service Connect"
    host = connect["alias"] if isinstance(connect, dict) else qdrant["name"]
    api = load(API)
    assert api["network"]["connect"], "api must join Service Connect to reach qdrant"
    for env in ENVS:
        url = urlparse(for_env(api, env)["variables"]["QDRANT_URL"])
        assert (url.hostname, url.port) == (host, for_env(qdrant, env)["image"]["port"]), env


def test_qdrant_runs_one_task_with_snapshots_on_efs() -> None:
    qdrant = load(QDRANT)
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", qdrant["image"]["location"])
    for env in ENVS:
        cfg = for_env(qdrant, env)
        assert cfg["count"] == 1 and cfg["deployment"]["rolling"] == "recreate"
        volume_paths = {v["path"] for v in cfg["storage"]["volumes"].values() if v.get("efs")}
        snapshots = cfg["variables"]["QDRANT__STORAGE__SNAPSHOTS_PATH"]
        storage = cfg["variables"]["QDRANT__STORAGE__STORAGE_PATH"]
        assert snapshots in volume_paths, "snapshots must live on EFS"
        assert not any(storage.startswith(p) for p in volume_paths), (
            "live storage must not be on NFS"
        )
        assert "QDRANT__SERVICE__API_KEY" in cfg["secrets"]
    probe = " ".join(qdrant["image"]["healthcheck"]["command"])
    assert "curl" not in probe and "wget" not in probe, "the qdrant image has neither"


def test_only_predefined_variables_are_interpolated_in_service_manifests() -> None:
    # Any other ${VAR} would fail `svc package` in the pipeline's build stage.
    for path in (API, QDRANT):
        names = set(INTERPOLATION.findall(path.read_text()))
        assert names <= {"COPILOT_APPLICATION_NAME", "COPILOT_ENVIRONMENT_NAME"}, (path, names)


def test_environments_import_https_certificates() -> None:
    for env in ENVS:
        doc = load(COPILOT / "environments" / env / "manifest.yml")
        assert doc["name"] == env
        assert doc["http"]["public"]["certificates"]
        assert doc["observability"]["container_insights"] is (env == "prod")


def test_api_alias_per_environment() -> None:
    api = load(API)
    for env in ENVS:
        assert for_env(api, env)["http"]["alias"], f"{env}: HTTPS needs an alias on the certificate"


def test_app_env_per_environment_is_strict_and_honest() -> None:
    # Every AWS environment is public: none runs APP_ENV=dev (demo accounts). dev and staging
    # say staging, prod says production; both are strict classes in wwhd.config.
    api = load(API)
    expected = {"dev": "staging", "staging": "staging", "prod": "production"}
    for env, app_env in expected.items():
        assert for_env(api, env)["variables"]["APP_ENV"] == app_env, env
        cls = config.CONFIGS[app_env]
        assert cls.DEMO_USER is False and issubclass(cls, config.StagingConfig), app_env
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        config.load_config({"APP_ENV": "staging", "JWT_SECRET": ""})


ROLLBACK_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/wwhd/api@sha256:" + "a" * 64


def test_rollback_pin_by_digest_validates_and_replaces_the_build() -> None:
    # docs/deploying.md "Rollback": pin one environment to a previous image with
    # environments.<env>.image.location, then `copilot deploy`. Copilot's imageTransformer
    # (internal/pkg/manifest/transform.go) clears image.build when an environment sets
    # image.location, so the deploy pushes nothing new and the ECS service moves through
    # CloudFormation (no drift). The repository name is <app>/<service>
    # (internal/pkg/cli/deploy/workload.go RepoName).
    api = load(API)
    api["environments"]["prod"]["image"] = {"location": ROLLBACK_IMAGE}
    validate(api, "Load Balanced Web Service")
    prod = for_env(api, "prod")
    assert prod["image"]["location"] == ROLLBACK_IMAGE and "build" not in prod["image"]
    assert prod["image"]["port"] == 8000 and prod["image"]["healthcheck"]
    assert "build" in for_env(api, "staging")["image"], "other environments keep building"
    docs = (ROOT / "docs" / "deploying.md").read_text()
    assert (
        "image:\n      location: <account>.dkr.ecr.<region>.amazonaws.com/wwhd/api@sha256:" in docs
    )


# --- addons -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ADDONS, ids=lambda p: p.name)
def test_addon_declares_copilot_parameters(path: Path) -> None:
    params = load_cfn(path)["Parameters"]
    assert {"App", "Env", "Name"} <= set(params)
    extra = set(params) - {"App", "Env", "Name"}
    # No addons.parameters.yml: every other parameter needs a default.
    assert all("Default" in params[p] for p in extra), extra


def test_addon_outputs_copilot_injects() -> None:
    db = load_cfn(COPILOT / "api" / "addons" / "db.yml")
    out = db["Outputs"]["DbSecret"]
    ref = out["Value"]["Ref"]
    # Copilot injects a secret only for a plain Ref to a Secrets Manager secret,
    # and an output with a Condition would be missing in dev and break the stack.
    assert db["Resources"][ref]["Type"] == "AWS::SecretsManager::Secret"
    assert "Condition" not in db["Resources"][ref] and "Condition" not in out
    cluster = db["Resources"]["DbCluster"]
    assert cluster["Condition"] == "CreateDb"
    envs = [eq["Fn::Equals"][1] for eq in db["Conditions"]["CreateDb"]["Fn::Or"]]
    assert all(
        eq["Fn::Equals"][0] == {"Ref": "Env"} for eq in db["Conditions"]["CreateDb"]["Fn::Or"]
    )
    assert sorted(envs) == ["prod", "staging"], "Aurora only where several tasks write"
    assert "UPLOADS_BUCKET_NAME" in _addon_env_vars() and "DB_SECRET" in _addon_env_vars()


def test_cfn_lint_passes_on_addons() -> None:
    cfn_lint = VENV_BIN / "cfn-lint"
    if not cfn_lint.exists():
        cfn_lint = Path(shutil.which("cfn-lint") or "cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), *map(str, ADDONS)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_passes_on_dockerfile() -> None:
    hadolint = VENV_BIN / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- pipeline ---------------------------------------------------------------------


def test_pipeline_promotes_dev_staging_prod_with_approval_and_smoke() -> None:
    pipeline = load(PIPELINE)
    stages = pipeline["stages"]
    assert [s["name"] for s in stages] == list(ENVS)
    assert [bool(s.get("requires_approval")) for s in stages] == [False, False, True]
    for stage in stages:
        spec = ROOT / stage["post_deployments"]["smoke"]["buildspec"]
        assert spec.is_file(), spec
        assert "scripts/smoke" in spec.read_text()
        assert set(stage["deployments"]) == {"api", "qdrant"}
    build = yaml.safe_load((ROOT / pipeline["build"]["buildspec"]).read_text())
    assert any("make test" in c for c in build["phases"]["build"]["commands"])
    assert build["phases"]["build"].get("on-failure") == "ABORT"


# --- image and serving ------------------------------------------------------------


# Docker's official images, mirrored by AWS on ECR Public: no Docker Hub pull limit for
# CodeBuild's shared IPs (https://gallery.ecr.aws/docker/library/python).
ECR_PUBLIC_PYTHON = r"public\.ecr\.aws/docker/library/python:3\.11\.\d+-slim(-\w+)?"


def test_dockerfile_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(ECR_PUBLIC_PYTHON, base), base
    job = (COPILOT / "qdrant-snapshot" / "Dockerfile").read_text()
    assert re.search(r"^FROM (\S+)", job, re.M).group(1) == base, "one pinned base for both"
    assert "pip install --no-cache-dir -r requirements.txt" in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)$", text, re.M | re.S).group(0)
    assert "urllib" in healthcheck and "curl" not in healthcheck, "slim has no curl"
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert "scripts/entrypoint" in text


def test_api_container_healthcheck_is_in_the_manifest() -> None:
    # ECS ignores an image's HEALTHCHECK: only the task definition's HealthCheck runs, which
    # Copilot renders from image.healthcheck (aws/copilot-cli internal/pkg/manifest/workload.go
    # ContainerHealthCheck -> internal/pkg/template/templates/workloads/partials/cf/
    # workload-container.yml "HealthCheck:"). The Dockerfile keeps the same probe for docker run.
    hc = load(API)["image"]["healthcheck"]
    assert hc["command"][0] == "CMD"
    text = (ROOT / "Dockerfile").read_text()
    docker = re.search(
        r'CMD (\[.*\])\s*$', re.search(r"^HEALTHCHECK .*?(?<!\\)$", text, re.M | re.S).group(0)
    )
    assert json.loads(docker.group(1)) == hc["command"][1:], "Dockerfile and manifest probes differ"
    # ECS HealthCheck limits: startPeriod <= 300 s, timeout < interval.
    assert _seconds(hc["start_period"]) <= 300
    assert _seconds(hc["timeout"]) < _seconds(hc["interval"])
    assert "/health" in hc["command"][-1] and "/health/detailed" not in hc["command"][-1]


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def test_entrypoint_migrates_then_execs_gunicorn() -> None:
    script = ROOT / "scripts" / "entrypoint"
    assert script.stat().st_mode & 0o111
    lines = [
        ln.strip()
        for ln in script.read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    upgrade = lines.index("flask db upgrade")
    assert lines[-1] == "exec gunicorn -c gunicorn.conf.py wsgi:app"
    assert upgrade < len(lines) - 1


def test_gunicorn_config_fits_alb_and_ecs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["worker_class"] == "gevent" and conf["workers"] == 1
    assert conf["keepalive"] > 60, "must outlive the ALB's 60 s idle timeout"
    assert conf["accesslog"] is None and conf["errorlog"] == "-"
    api = load(API)
    stop = next(
        o["value"]
        for o in api["taskdef_overrides"]
        if o["path"] == "ContainerDefinitions[0].StopTimeout"
    )
    assert conf["graceful_timeout"] < stop <= 120, "drain before ECS sends SIGKILL"
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["bind"] == "127.0.0.1:9001" and conf["workers"] == 3


BUILDSPEC = COPILOT / "pipelines" / "wwhd-main" / "buildspec.yml"


def test_buildspec_pins_and_verifies_copilot() -> None:
    spec = yaml.safe_load(BUILDSPEC.read_text())
    variables = spec["env"]["variables"]
    # The sha256 AWS publishes for copilot_1.34.1_linux_amd64.tar.gz: aws/homebrew-tap
    # bottle-configs/copilot-cli.json (commit 8748343, "upgrade copilot-cli to v1.34.1"), an
    # archive of the release's copilot-linux made by aws/copilot-cli
    # .github/workflows/homebrew.yml ("tar czf copilot_${semvar}_linux_amd64.tar.gz copilot").
    assert variables["COPILOT_VERSION"] == "1.34.1"
    assert variables["COPILOT_SHA256"] == (
        "62bd2d7553bec2aa7d6852ed2f275c31224d5a61d0caeb0a40e2875d86793d93"
    )
    install = spec["phases"]["install"]["commands"]
    download = next(i for i, c in enumerate(install) if "copilot.tar.gz" in c and "curl" in c)
    assert (
        "releases/download/v${COPILOT_VERSION}/copilot_${COPILOT_VERSION}_linux_amd64"
        in (install[download])
    )
    check = next(i for i, c in enumerate(install) if "sha256sum -c" in c)
    unpack = next(i for i, c in enumerate(install) if c.startswith("tar "))
    assert download < check < unpack, "verify before the binary is unpacked or run"
    assert not any("copilot-linux" in c for c in install[:unpack])
    text = BUILDSPEC.read_text()
    assert "ecs-cli-v2-release" not in text and "wget" not in text


def test_sha256_check_rejects_a_different_download(tmp_path: Path) -> None:
    spec = yaml.safe_load(BUILDSPEC.read_text())
    check = next(c for c in spec["phases"]["install"]["commands"] if "sha256sum -c" in c)
    (tmp_path / "copilot.tar.gz").write_bytes(b"not the release")
    env = {"PATH": "/usr/bin:/bin", **spec["env"]["variables"]}
    result = subprocess.run(["bash", "-c", check], cwd=tmp_path, env=env, capture_output=True)
    assert result.returncode != 0


def test_release_gate_installs_once_and_runs_postgres_and_redis_tests() -> None:
    spec = yaml.safe_load(BUILDSPEC.read_text())
    variables = spec["env"]["variables"]
    commands = [c for phase in spec["phases"].values() for c in phase.get("commands", [])]
    installs = [c for c in commands if "pip install" in c or re.search(r"\bmake\b.*\.dev", c)]
    # `make test` depends on the .venv/.dev stamp, so it reuses this install (Makefile).
    assert installs == ["make PYTHON=python3.11 .venv/.dev"], installs
    assert "$(VENV)/.dev" in (ROOT / "Makefile").read_text()
    assert spec["phases"]["build"]["commands"] == ["make test"]
    # Required, not optional: tests/conftest.py and tests/ops/test_limits.py fail instead of
    # skipping when these are set and the service is unreachable.
    assert variables["WWHD_REQUIRE_POSTGRES"] == "1" and variables["WWHD_REQUIRE_REDIS"] == "1"
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    assert "WWHD_REQUIRE_POSTGRES" in conftest and "WWHD_TEST_POSTGRES_URL" in conftest
    limits = (ROOT / "tests" / "ops" / "test_limits.py").read_text()
    assert "WWHD_REQUIRE_REDIS" in limits and "WWHD_TEST_REDIS_URL" in limits
    assert urlparse(variables["WWHD_TEST_POSTGRES_URL"]).port == 5432
    for name in ("POSTGRES_IMAGE", "REDIS_IMAGE"):
        assert variables[name].startswith("public.ecr.aws/docker/library/"), name
        assert any(f'"${name}"' in c and "docker run" in c for c in commands), name
