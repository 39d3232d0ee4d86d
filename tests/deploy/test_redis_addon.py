"""copilot/api/addons/redis.yml: shared rate-limit counters in staging/prod, in-memory in dev, wired to REDIS_URL."""

import importlib.util
import re
from pathlib import Path

import pytest
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from redis.connection import SSLConnection

from tests.conftest import close_app, make_app

_spec = importlib.util.spec_from_file_location(
    "wwhd_deploy_test_copilot_redis", Path(__file__).with_name("test_copilot.py")
)
deploy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy)

ADDON = deploy.COPILOT / "api" / "addons" / "redis.yml"
DB_ADDON = deploy.COPILOT / "api" / "addons" / "db.yml"


def template() -> dict:
    return deploy.load_cfn(ADDON)


def import_name(value: dict) -> str:
    return value["Fn::ImportValue"]["Fn::Sub"]


def render_url(
    env: str,
    address: str = "wwhd-prod-api-ratelimit-abc123.serverless.use1.cache.amazonaws.com",
    port: str = "6379",
) -> str:
    """The RedisUrl output as CloudFormation resolves it in `env`."""
    tpl = template()
    condition, when_true, when_false = tpl["Outputs"]["RedisUrl"]["Value"]["Fn::If"]
    envs = [eq["Fn::Equals"][1] for eq in tpl["Conditions"][condition]["Fn::Or"]]
    if env not in envs:
        return when_false
    return (
        when_true["Fn::Sub"]
        .replace("${RateLimitCache.Endpoint.Address}", address)
        .replace("${RateLimitCache.Endpoint.Port}", port)
    )


def test_addon_is_linted_and_declares_copilot_parameters() -> None:
    # test_copilot.py lints and checks every file in addons/; make sure this one is among them.
    assert ADDON in deploy.ADDONS


def test_cache_only_in_staging_and_prod_like_the_database() -> None:
    tpl = template()
    condition = tpl["Conditions"]["CreateCache"]["Fn::Or"]
    assert all(eq["Fn::Equals"][0] == {"Ref": "Env"} for eq in condition)
    assert sorted(eq["Fn::Equals"][1] for eq in condition) == ["prod", "staging"]
    assert tpl["Conditions"]["CreateCache"] == deploy.load_cfn(DB_ADDON)["Conditions"]["CreateDb"]
    for name, resource in tpl["Resources"].items():
        assert resource.get("Condition") == "CreateCache", f"{name} would be created in dev"


def test_cache_is_serverless_private_and_reachable_only_from_tasks() -> None:
    tpl = template()
    resources, db = tpl["Resources"], deploy.load_cfn(DB_ADDON)["Resources"]
    cache = resources["RateLimitCache"]
    assert cache["Type"] == "AWS::ElastiCache::ServerlessCache"
    props = cache["Properties"]
    assert props["Engine"] in ("valkey", "redis")
    assert props["SecurityGroupIds"] == [{"Ref": "CacheSecurityGroup"}]
    # Same private subnets, VPC and environment security group imports as the database.
    subnets = props["SubnetIds"]["Fn::Split"][1]
    assert import_name(subnets) == import_name(
        db["DbSubnetGroup"]["Properties"]["SubnetIds"]["Fn::Split"][1]
    )
    group = resources["CacheSecurityGroup"]["Properties"]
    assert group["VpcId"] == db["DbSecurityGroup"]["Properties"]["VpcId"]
    [rule] = group["SecurityGroupIngress"]
    assert (
        rule["SourceSecurityGroupId"]
        == db["DbSecurityGroup"]["Properties"]["SecurityGroupIngress"][0]["SourceSecurityGroupId"]
    )
    assert "CidrIp" not in rule and rule["FromPort"] <= 6379 <= rule["ToPort"]
    assert props["CacheUsageLimits"]["DataStorage"]["Unit"] == "GB", "a cost ceiling is set"


def test_output_is_unconditional_and_injected_as_redis_url() -> None:
    tpl = template()
    output = tpl["Outputs"]["RedisUrl"]
    # Copilot injects every output into the task definition; one missing in dev breaks the stack.
    assert "Condition" not in output
    assert deploy.env_var_name("RedisUrl") == "REDIS_URL"
    assert "REDIS_URL" in deploy._addon_env_vars()
    for env in deploy.ENVS:
        variables = deploy.for_env(deploy.load(deploy.API), env).get("variables") or {}
        assert "REDIS_URL" not in variables, (
            f"{env}: the manifest would clash with the addon's REDIS_URL"
        )


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_get_a_tls_redis_url_limits_accepts(env: str) -> None:
    url = render_url(env)
    assert re.fullmatch(r"rediss://[a-z0-9.-]+:6379/0", url), url
    storage = storage_from_string(url, socket_connect_timeout=1, socket_timeout=1)
    assert isinstance(storage, RedisStorage)
    # TLS: ElastiCache Serverless refuses plaintext connections.
    assert storage.storage.connection_pool.connection_class is SSLConnection


def test_dev_gets_memory_which_the_app_counts_in_process(tmp_path) -> None:
    url = render_url("dev")
    assert url == "memory://"

    app = make_app(tmp_path, REDIS_URL=url, RATE_LIMIT_ANON="2/minute")
    limiter = app.extensions["wwhd_limiter"]
    assert isinstance(limiter.storage, MemoryStorage)
    client = app.test_client()
    statuses = [client.get("/api/v1/chats").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    close_app(app)
