"""JSON Schemas for the subset of Copilot manifest fields WWHD uses.

Copilot ignores unknown keys, so every object here sets additionalProperties: false:
a misspelled key fails validation instead of silently deploying without the setting.
Field names follow the Copilot manifest reference (v1.34). Add a field here before
using it in a manifest.

Where Copilot's own validation rejects a value, the schema rejects it too. The rules are copied
from aws/copilot-cli internal/pkg/manifest/validate.go (mirror at v1.33.2-5-g4c858e718; the
validation code is unchanged in v1.34.x) and cited next to each rule below.
"""

from typing import Any

Schema = dict[str, Any]


def obj(properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    """A closed object: only the listed properties are allowed."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def string_map(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


STRING: Schema = {"type": "string", "minLength": 1}
BOOL: Schema = {"type": "boolean"}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
# Go durations as Copilot parses them: 15s, 2m, 1h30m, 500ms.
DURATION: Schema = {"type": "string", "pattern": r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$"}
STRING_OR_LIST: Schema = {"oneOf": [STRING, {"type": "array", "items": STRING, "minItems": 1}]}
FROM_CFN: Schema = obj({"from_cfn": STRING}, ("from_cfn",))
ENV_NAME: Schema = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}

# CloudWatch Logs accepted RetentionInDays values.
LOG_RETENTION_DAYS = [
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
]

CONTAINER_HEALTHCHECK = obj(
    {
        "command": {
            "type": "array",
            "minItems": 2,
            "items": STRING,
            "prefixItems": [{"enum": ["CMD", "CMD-SHELL"]}],
        },
        "interval": DURATION,
        "retries": {"type": "integer", "minimum": 1, "maximum": 10},
        "timeout": DURATION,
        "start_period": DURATION,
    }
)

DOCKER_BUILD = {
    "oneOf": [
        STRING,
        obj(
            {
                "dockerfile": STRING,
                "context": STRING,
                "args": string_map({"type": "string"}),
                "target": STRING,
                "cache_from": {"type": "array", "items": STRING},
            }
        ),
    ]
}

IMAGE = {
    **obj(
        {
            "build": DOCKER_BUILD,
            "location": STRING,
            "port": PORT,
            "healthcheck": CONTAINER_HEALTHCHECK,
            "labels": string_map({"type": "string"}),
            "depends_on": string_map({"enum": ["start", "healthy", "complete", "success"]}),
            "credentials": STRING,
        }
    ),
    # Exactly one image source.
    "oneOf": [{"required": ["build"]}, {"required": ["location"]}],
}

HTTP_HEALTHCHECK = {
    "oneOf": [
        STRING,
        obj(
            {
                "path": STRING,
                "port": PORT,
                "success_codes": STRING,
                "healthy_threshold": {"type": "integer", "minimum": 2, "maximum": 10},
                "unhealthy_threshold": {"type": "integer", "minimum": 2, "maximum": 10},
                "interval": DURATION,
                "timeout": DURATION,
                "grace_period": DURATION,
            }
        ),
    ]
}

ALIAS = {
    "oneOf": [
        STRING,
        {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [STRING, obj({"name": STRING, "hosted_zone": STRING}, ("name",))]},
        },
    ]
}

HTTP = {
    "oneOf": [
        {"const": False},
        obj(
            {
                "path": STRING,
                "healthcheck": HTTP_HEALTHCHECK,
                "alias": ALIAS,
                "hosted_zone": STRING,
                "deregistration_delay": DURATION,
                "stickiness": BOOL,
                "allowed_source_ips": {"type": "array", "items": STRING},
                "redirect_to_https": BOOL,
                "target_container": STRING,
                "target_port": PORT,
                # validate.go httpProtocolVersions = {"GRPC", "HTTP1", "HTTP2"}, compared
                # after strings.ToUpper: any letter case is accepted, nothing else is.
                "version": {
                    "type": "string",
                    "pattern": r"^([gG][rR][pP][cC]|[hH][tT][tT][pP][12])$",
                },
            }
        ),
    ]
}

COOLDOWN = obj({"in": DURATION, "out": DURATION})
PERCENT = {"type": "integer", "minimum": 1, "maximum": 100}
SCALING_TARGET = {"oneOf": [PERCENT, obj({"value": PERCENT, "cooldown": COOLDOWN}, ("value",))]}
COUNT = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        obj(
            {
                "range": {
                    "oneOf": [
                        {"type": "string", "pattern": r"^\d+-\d+$"},
                        obj(
                            {
                                "min": {"type": "integer", "minimum": 0},
                                "max": {"type": "integer", "minimum": 1},
                                "spot_from": {"type": "integer", "minimum": 0},
                            },
                            ("min", "max"),
                        ),
                    ]
                },
                "cooldown": COOLDOWN,
                "cpu_percentage": SCALING_TARGET,
                "memory_percentage": SCALING_TARGET,
                "requests": {
                    "oneOf": [
                        {"type": "integer", "minimum": 1},
                        obj({"value": {"type": "integer", "minimum": 1}, "cooldown": COOLDOWN}),
                    ]
                },
                "response_time": {
                    "oneOf": [DURATION, obj({"value": DURATION, "cooldown": COOLDOWN})]
                },
                "spot": {"type": "integer", "minimum": 0},
            }
        ),
    ]
}

DEPLOYMENT = obj(
    {
        "rolling": {"enum": ["default", "recreate"]},
        "rollback_alarms": {
            "oneOf": [
                {"type": "array", "items": STRING, "minItems": 1},
                obj(
                    {
                        "cpu_utilization": {"type": "number"},
                        "memory_utilization": {"type": "number"},
                    }
                ),
            ]
        },
    }
)

NETWORK = obj(
    {
        "connect": {"oneOf": [BOOL, obj({"alias": STRING})]},
        "vpc": obj(
            {
                "placement": {"enum": ["public", "private"]},
                "security_groups": {"type": "array", "items": STRING},
            }
        ),
    }
)

VARIABLES = {
    "type": "object",
    "propertyNames": ENV_NAME,
    "additionalProperties": {"oneOf": [{"type": ["string", "number", "boolean"]}, FROM_CFN]},
}
SECRETS = {
    "type": "object",
    "propertyNames": ENV_NAME,
    "additionalProperties": {
        "oneOf": [STRING, FROM_CFN, obj({"secretsmanager": STRING}, ("secretsmanager",))]
    },
}

# validate.go EFSVolumeConfiguration.validate(): uid and gid come together, "uid" must not
# be 0, and uid/gid are mutually exclusive with id/root_dir/auth (bring-your-own filesystem).
# uid/gid are uint32 in the manifest struct (storage.go EFSVolumeConfiguration).
_EFS_ID = {"type": "integer", "minimum": 0, "maximum": 4294967295}
EFS = {
    "oneOf": [
        BOOL,
        {
            **obj(
                {
                    "id": {"oneOf": [STRING, FROM_CFN]},
                    "root_dir": STRING,
                    "auth": obj({"iam": BOOL, "access_point_id": STRING}),
                    "uid": {**_EFS_ID, "minimum": 1},
                    "gid": _EFS_ID,
                }
            ),
            "dependentRequired": {"uid": ["gid"], "gid": ["uid"]},
            "not": {
                "anyOf": [
                    {"required": ["uid", "id"]},
                    {"required": ["uid", "root_dir"]},
                    {"required": ["uid", "auth"]},
                ]
            },
        },
    ]
}

STORAGE = obj(
    {
        "ephemeral": {"type": "integer", "minimum": 20, "maximum": 200},
        "readonly_fs": BOOL,
        "volumes": string_map(
            obj(
                {
                    "path": {"type": "string", "pattern": r"^[a-zA-Z0-9.\-_/]{1,241}$"},
                    "read_only": BOOL,
                    "efs": EFS,
                },
                ("path",),
            )
        ),
    }
)

LOGGING = obj(
    {
        "retention": {"enum": LOG_RETENTION_DAYS},
        "image": STRING,
        "destination": string_map({"type": "string"}),
        "enableMetadata": BOOL,
        "secretOptions": SECRETS,
        "configFilePath": STRING,
        "variables": VARIABLES,
        "secrets": SECRETS,
        "env_file": STRING,
    }
)

TASKDEF_OVERRIDES = {
    "type": "array",
    "items": obj({"path": STRING, "value": {}}, ("path", "value")),
}

# Fields shared by both service types; each may be overridden per environment.
SERVICE_FIELDS: Schema = {
    "image": IMAGE,
    "entrypoint": STRING_OR_LIST,
    "command": STRING_OR_LIST,
    "cpu": {"enum": [256, 512, 1024, 2048, 4096, 8192, 16384]},
    "memory": {"type": "integer", "minimum": 512, "maximum": 122880},
    "platform": {"enum": ["linux/amd64", "linux/x86_64", "linux/arm64"]},
    "count": COUNT,
    "exec": BOOL,
    "deployment": DEPLOYMENT,
    "network": NETWORK,
    "variables": VARIABLES,
    "env_file": STRING,
    "secrets": SECRETS,
    "storage": STORAGE,
    "logging": LOGGING,
    "taskdef_overrides": TASKDEF_OVERRIDES,
}


def _service(type_name: str, extra: Schema) -> Schema:
    fields = {**SERVICE_FIELDS, **extra}
    override = obj({k: v if k != "image" else {"type": "object"} for k, v in fields.items()})
    # Overrides may set only part of the image (e.g. a new tag), so "image" is
    # re-checked without the one-source rule.
    override["properties"]["image"] = obj(IMAGE["properties"])
    return obj(
        {
            "name": STRING,
            "type": {"const": type_name},
            **fields,
            "environments": string_map({"oneOf": [{"type": "null"}, override]}),
        },
        ("name", "type", "image"),
    )


LB_WEB_SERVICE = _service("Load Balanced Web Service", {"http": HTTP})
BACKEND_SERVICE = _service("Backend Service", {})

# Scheduled Job: one Fargate task started by EventBridge through Step Functions. It is not an
# ECS service: no count, deployment or Service Connect, and its image has no port.
SCHEDULE: Schema = {
    "type": "string",
    "pattern": (
        r"^(@every (\d+(\.\d+)?(ns|us|ms|s|m|h))+"
        r"|@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
        r"|none|(\S+ ){4}\S+|(rate|cron)\(.+\))$"
    ),
}
JOB_IMAGE: Schema = {
    **obj({k: v for k, v in IMAGE["properties"].items() if k != "port"}),
    "oneOf": IMAGE["oneOf"],
}
JOB_FIELDS: Schema = {
    **{k: v for k, v in SERVICE_FIELDS.items() if k not in ("count", "deployment", "network")},
    "image": JOB_IMAGE,
    "network": obj({"vpc": NETWORK["properties"]["vpc"]}),
    "on": obj({"schedule": SCHEDULE}, ("schedule",)),
    "timeout": DURATION,
    "retries": {"type": "integer", "minimum": 0, "maximum": 10},
}
_JOB_OVERRIDE = obj({**JOB_FIELDS, "image": obj(JOB_IMAGE["properties"])})
SCHEDULED_JOB = obj(
    {
        "name": STRING,
        "type": {"const": "Scheduled Job"},
        **JOB_FIELDS,
        "environments": string_map({"oneOf": [{"type": "null"}, _JOB_OVERRIDE]}),
    },
    ("name", "type", "image", "on"),
)

ENVIRONMENT = obj(
    {
        "name": STRING,
        "type": {"const": "Environment"},
        "http": obj(
            {
                "public": obj(
                    {
                        "certificates": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "string",
                                "pattern": r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+|\$\{[A-Z_][A-Z0-9_]*\})$",
                            },
                        },
                        "access_logs": {
                            "oneOf": [BOOL, obj({"bucket_name": STRING, "prefix": STRING})]
                        },
                        "ingress": obj({"source_ips": {"type": "array", "items": STRING}}),
                        "ssl_policy": STRING,
                    }
                ),
            }
        ),
        "network": obj({"vpc": obj({"id": STRING, "cidr": STRING, "flow_logs": BOOL})}),
        "observability": obj({"container_insights": BOOL}),
    },
    ("name", "type"),
)

ACTION = {
    "oneOf": [
        {"type": "null"},
        obj(
            {
                "buildspec": STRING,
                "depends_on": {"type": "array", "items": STRING},
            },
            ("buildspec",),
        ),
    ]
}
DEPLOY_ORDER = {
    "oneOf": [
        {"type": "null"},
        obj(
            {
                "stack_name": STRING,
                "template_path": STRING,
                "template_config": STRING,
                "depends_on": {"type": "array", "items": STRING},
            }
        ),
    ]
}

PIPELINE = obj(
    {
        "name": STRING,
        "version": {"const": 1},
        "source": obj(
            {
                "provider": {"enum": ["GitHub", "Bitbucket", "CodeCommit"]},
                "properties": obj(
                    {
                        "branch": STRING,
                        "repository": STRING,
                        "connection_name": STRING,
                        "output_artifact_format": {"enum": ["CODE_ZIP", "CODEBUILD_CLONE_REF"]},
                    },
                    ("repository",),
                ),
            },
            ("provider", "properties"),
        ),
        "build": obj(
            {
                "image": STRING,
                "buildspec": STRING,
                "additional_policy": obj({"PolicyDocument": {"type": "object"}}),
            }
        ),
        "stages": {
            "type": "array",
            "minItems": 1,
            "items": {
                **obj(
                    {
                        "name": STRING,
                        "requires_approval": BOOL,
                        "test_commands": {"type": "array", "items": STRING},
                        "deployments": string_map(DEPLOY_ORDER),
                        "pre_deployments": string_map(ACTION),
                        "post_deployments": string_map(ACTION),
                    },
                    ("name",),
                ),
                # Copilot: post_deployments and test_commands are mutually exclusive.
                "not": {"required": ["post_deployments", "test_commands"]},
            },
        },
    },
    ("name", "version", "source", "stages"),
)

WORKSPACE = obj({"application": STRING}, ("application",))

SCHEMAS: dict[str, Schema] = {
    "Load Balanced Web Service": LB_WEB_SERVICE,
    "Backend Service": BACKEND_SERVICE,
    "Scheduled Job": SCHEDULED_JOB,
    "Environment": ENVIRONMENT,
    "Pipeline": PIPELINE,
    "Workspace": WORKSPACE,
}

# Valid Fargate (cpu units -> memory MiB) pairs.
FARGATE_MEMORY: dict[int, set[int]] = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}
