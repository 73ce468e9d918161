"""API layer: the routes, their integrations and permissions, the stage and its logging."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from shared.api_routes import APPLICATION_ROUTES, ROUTES, routes_fingerprint
from shared.manifest import MANIFEST, REPO_ROOT
from shared.naming import API_STAGE_NAME, LIVE_ALIAS
from tooling.mock_engine import LayerRun, run_layer

README = REPO_ROOT / "README.md"

SEED_ACCESS_LOG_FIELDS = {
    "requestId",
    "ip",
    "caller",
    "user",
    "requestTime",
    "httpMethod",
    "resourcePath",
    "status",
    "protocol",
    "responseLength",
}


def test_rest_api_is_regional(chain: dict[str, LayerRun]) -> None:
    api = chain["api"].named("rest-api").inputs
    assert api["endpointConfiguration"] == {"types": "REGIONAL"}
    assert api["name"] == "serverless-dev-api"


def test_the_route_table_derives_one_public_preflight_per_path() -> None:
    preflights = [route for route in ROUTES if route.method == "OPTIONS"]
    paths = list(dict.fromkeys(route.path for route in APPLICATION_ROUTES))
    assert [route.path for route in preflights] == paths
    assert all(route.public and not route.validate_body for route in preflights)
    assert tuple(preflights) == ROUTES[len(APPLICATION_ROUTES) :]


def test_the_readme_documents_every_route_of_the_table() -> None:
    # The API section's table: one row per application route, `METHOD /path` first.
    section = README.read_text(encoding="utf-8").split("## The API\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z]+ /[^`]*)` \|", section, flags=re.MULTILINE)
    assert documented == [route.key for route in APPLICATION_ROUTES]


def test_every_route_is_a_lambda_proxy_to_the_live_alias(chain: dict[str, LayerRun]) -> None:
    api = chain["api"]
    invoke_arn = chain["compute"].exports["api_handler_alias_invoke_arn"].value
    assert f":{LIVE_ALIAS}/invocations" in invoke_arn
    methods = {
        (m.inputs["httpMethod"], m.name) for m in api.of_type("aws:apigateway/method:Method")
    }
    assert methods == {(route.method, f"routes-{route.slug}") for route in ROUTES}
    assert len(methods) == len(ROUTES)  # no two routes share a logical name
    integrations = api.of_type("aws:apigateway/integration:Integration")
    assert {i.name for i in integrations} == {f"routes-{r.slug}-integration" for r in ROUTES}
    for route in ROUTES:
        method = api.named(f"routes-{route.slug}")
        integration = api.named(f"routes-{route.slug}-integration").inputs
        assert integration["type"] == "AWS_PROXY"
        assert integration["integrationHttpMethod"] == "POST"
        assert integration["uri"] == invoke_arn
        assert integration["httpMethod"] == route.method
        assert integration["resourceId"] == method.inputs["resourceId"]


def test_each_path_has_a_public_preflight_method_on_its_own_resource(
    chain: dict[str, LayerRun],
) -> None:
    api_key_mode = run_layer(
        MANIFEST.layer("api"), config={"authorization": "API_KEY"}, upstream=chain
    )
    pairs = [
        (preflight.slug, route.slug)
        for route in APPLICATION_ROUTES
        for preflight in ROUTES
        if preflight.is_preflight and preflight.path == route.path
    ]
    assert len(pairs) == len(APPLICATION_ROUTES)
    for run in (chain["api"], api_key_mode):
        methods = _methods(run)
        for slug, route_slug in pairs:
            preflight = methods[f"routes-{slug}"]
            # A preflight carries no credentials (Fetch standard), so it cannot be authorized.
            assert preflight["httpMethod"] == "OPTIONS"
            assert preflight["authorization"] == "NONE", slug
            assert preflight["apiKeyRequired"] is False, slug
            assert "requestValidatorId" not in preflight
            assert preflight["resourceId"] == methods[f"routes-{route_slug}"]["resourceId"]


def test_the_resource_tree_holds_every_path_segment_and_the_greedy_key(
    chain: dict[str, LayerRun],
) -> None:
    resources = chain["api"].of_type("aws:apigateway/resource:Resource")
    parts = [r.inputs["pathPart"] for r in resources]
    segments = {part for route in ROUTES for part in route.path.strip("/").split("/")}
    assert sorted(parts) == sorted(segments)  # each segment once, shared by its methods
    assert "{key+}" in parts
    objects_method = chain["api"].named("routes-get-objects-key").inputs
    assert objects_method["requestParameters"] == {"method.request.path.key": True}


def test_process_body_is_validated_as_a_json_object(chain: dict[str, LayerRun]) -> None:
    api = chain["api"]
    post = api.named("routes-post-process").inputs
    validator = api.named("routes-body-validator")
    assert post["requestValidatorId"] == validator.id
    assert validator.inputs["validateRequestBody"] is True
    model = api.named("routes-process-request-model").inputs
    assert post["requestModels"] == {"application/json": model["name"]}
    assert json.loads(model["schema"])["type"] == "object"
    assert "requestValidatorId" not in api.named("routes-get-health").inputs


def test_each_route_may_invoke_only_through_its_own_method_and_path(
    chain: dict[str, LayerRun],
) -> None:
    api = chain["api"]
    execution_arn = api.named("rest-api").outputs["executionArn"]
    function_name = chain["compute"].exports["api_handler_function_name"].value
    source_arns = []
    for permission in api.of_type("aws:lambda/permission:Permission"):
        assert permission.inputs["principal"] == "apigateway.amazonaws.com"
        assert permission.inputs["function"] == function_name
        assert permission.inputs["qualifier"] == LIVE_ALIAS
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        source_arns.append(permission.inputs["sourceArn"])
    # One permission per method, each scoped to exactly its method and path (a greedy
    # parameter is the only wildcard: tests/unit/test_api_routes.py).
    assert sorted(source_arns) == sorted(
        f"{execution_arn}/{API_STAGE_NAME}/{route.method}/{route.execute_api_path}"
        for route in ROUTES
    )
    assert f"{execution_arn}/{API_STAGE_NAME}/GET/objects/*" in source_arns
    assert not any("/*/" in arn.removeprefix(execution_arn) for arn in source_arns)


def test_deployment_is_replaced_exactly_when_routes_change(chain: dict[str, LayerRun]) -> None:
    deployment = chain["api"].named("deployment").inputs
    assert deployment["triggers"] == {"routes": routes_fingerprint(ROUTES, "AWS_IAM")}
    assert routes_fingerprint() == routes_fingerprint(ROUTES)
    changed = (*ROUTES[:-1], replace(ROUTES[-1], path="/results/{key+}"))
    assert routes_fingerprint(changed) != routes_fingerprint()


def test_stage_logs_json_access_logs_to_an_encrypted_group_with_xray(
    chain: dict[str, LayerRun],
) -> None:
    api = chain["api"]
    stage = api.named("prod-stage").inputs
    access_logs = api.named("access-logs")
    assert stage["stageName"] == "prod"
    assert stage["xrayTracingEnabled"] is True
    assert stage["deployment"] == api.named("deployment").id
    assert stage["accessLogSettings"]["destinationArn"] == access_logs.outputs["arn"]
    assert set(json.loads(stage["accessLogSettings"]["format"])) == SEED_ACCESS_LOG_FIELDS
    assert access_logs.inputs["retentionInDays"] == 14
    assert access_logs.inputs["kmsKeyId"] == chain["security"].exports["kms_key_arn"].value


def test_method_settings_throttle_and_log_without_bodies(chain: dict[str, LayerRun]) -> None:
    settings = chain["api"].named("all-methods").inputs
    assert settings["methodPath"] == "*/*"
    assert settings["settings"] == {
        "metricsEnabled": True,
        "loggingLevel": "INFO",
        "dataTraceEnabled": False,
        "throttlingRateLimit": 100,
        "throttlingBurstLimit": 50,
    }


def test_account_logging_role_comes_from_security(chain: dict[str, LayerRun]) -> None:
    account = chain["api"].named("account-logging-role").inputs
    assert (
        account["cloudwatchRoleArn"]
        == chain["security"].exports["api_gateway_cloudwatch_role_arn"].value
    )


def test_endpoint_urls_are_built_on_the_stage_invoke_url(chain: dict[str, LayerRun]) -> None:
    exports = chain["api"].export_values()
    base = exports["api_gateway_url"]
    assert base.startswith("https://") and base.endswith(".amazonaws.com/prod")
    assert exports["health_check_url"] == f"{base}/health"
    assert exports["process_endpoint_url"] == f"{base}/process"


def _methods(run: LayerRun) -> dict[str, dict[str, object]]:
    return {m.name: m.inputs for m in run.of_type("aws:apigateway/method:Method")}


def test_every_route_but_health_requires_iam_signatures(chain: dict[str, LayerRun]) -> None:
    methods = _methods(chain["api"])
    assert methods["routes-get-health"]["authorization"] == "NONE"
    # GET /health is the one application route that answers anyone; the preflights never
    # carry credentials. Written here, not read from the table's `public` flags.
    assert {name for name, m in methods.items() if m["authorization"] == "NONE"} == {
        "routes-get-health",
        *(f"routes-{route.slug}" for route in ROUTES if route.is_preflight),
    }
    for name in ("routes-post-process", "routes-get-objects-key"):
        assert methods[name]["authorization"] == "AWS_IAM", name
        assert methods[name].get("apiKeyRequired") is False
    assert not chain["api"].of_type("aws:apigateway/apiKey:ApiKey")


def test_api_key_mode_requires_a_key_bound_to_a_usage_plan(chain: dict[str, LayerRun]) -> None:
    run = run_layer(MANIFEST.layer("api"), config={"authorization": "API_KEY"}, upstream=chain)
    methods = _methods(run)
    assert methods["routes-get-health"]["apiKeyRequired"] is False
    for name in ("routes-post-process", "routes-get-objects-key"):
        assert methods[name]["apiKeyRequired"] is True, name
    plan = run.named("usage-plan").inputs
    assert plan["apiStages"] == [{"apiId": run.named("rest-api").id, "stage": "prod"}]
    assert plan["quotaSettings"] == {"limit": 10000, "period": "DAY"}
    key = run.named("usage-plan-key").inputs
    assert key["keyId"] == run.named("api-key").id
    assert key["usagePlanId"] == run.named("usage-plan").id
    # Changing authorization redeploys the API.
    assert (
        run.named("deployment").inputs["triggers"]
        != chain["api"].named("deployment").inputs["triggers"]
    )


def test_waf_guards_the_stage_with_common_rules_and_a_rate_limit(
    chain: dict[str, LayerRun],
) -> None:
    api = chain["api"]
    acl = api.named("web-acl")
    assert acl.inputs["scope"] == "REGIONAL"
    assert acl.inputs["defaultAction"] == {"allow": {}}
    rules = {rule["name"]: rule for rule in acl.inputs["rules"]}
    managed = rules["aws-common-rule-set"]["statement"]["managedRuleGroupStatement"]
    assert (managed["vendorName"], managed["name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    assert managed["ruleActionOverrides"] == [
        {"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}
    ]
    rate = rules["rate-limit-per-ip"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"] == {"limit": 2000, "aggregateKeyType": "IP"}
    association = api.named("web-acl-association").inputs
    assert association["webAclArn"] == acl.outputs["arn"]
    assert association["resourceArn"] == api.named("prod-stage").outputs["arn"]
