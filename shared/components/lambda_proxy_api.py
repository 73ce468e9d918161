"""The REST API's route tree: resources, methods and Lambda proxy integrations for every
route in shared.api_routes (the derived OPTIONS preflight routes included), each with an invoke
permission scoped to its own method and path."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared.api_routes import (
    AUTHORIZATION_MODES,
    PROCESS_BODY_SCHEMA,
    ROUTES,
    Route,
    routes_fingerprint,
)
from shared.naming import API_STAGE_NAME, LIVE_ALIAS


@dataclass
class LambdaProxyApiArgs:
    rest_api: aws.apigateway.RestApi
    function_name: pulumi.Input[str]
    function_invoke_arn: pulumi.Input[str]
    # AWS_IAM: callers sign requests (SigV4); API_KEY: callers send a usage-plan key.
    authorization: str = "AWS_IAM"
    routes: tuple[Route, ...] = ROUTES


class LambdaProxyApi(pulumi.ComponentResource):
    """Every route proxied to one function alias."""

    methods: list[aws.apigateway.Method]
    integrations: list[aws.apigateway.Integration]
    fingerprint: str

    def __init__(
        self, name: str, args: LambdaProxyApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless:api:LambdaProxyApi", name, None, opts)
        self._args = args
        self._resources: dict[str, aws.apigateway.Resource] = {}
        self.methods = []
        self.integrations = []
        if args.authorization not in AUTHORIZATION_MODES:
            raise ValueError(f"authorization must be one of {AUTHORIZATION_MODES}")
        # A change of authorization changes every method, so it must redeploy the API too.
        self.fingerprint = routes_fingerprint(args.routes, args.authorization)
        child = pulumi.ResourceOptions(parent=self)
        rest_api = args.rest_api

        self.body_validator = aws.apigateway.RequestValidator(
            f"{name}-body-validator",
            rest_api=rest_api.id,
            name="validate-body",
            validate_request_body=True,
            validate_request_parameters=True,
            opts=child,
        )
        self.body_model = aws.apigateway.Model(
            f"{name}-process-request-model",
            rest_api=rest_api.id,
            name="ProcessRequest",
            content_type="application/json",
            schema=json.dumps(PROCESS_BODY_SCHEMA),
            opts=child,
        )

        for route in args.routes:
            self._declare_route(name, route)
        self.register_outputs({"fingerprint": self.fingerprint})

    def _resource_for(self, name: str, path: str) -> pulumi.Input[str]:
        """The API Gateway resource id for `path`, creating each missing path segment once."""
        rest_api = self._args.rest_api
        parent_id: pulumi.Input[str] = rest_api.root_resource_id
        built = ""
        for segment in path.strip("/").split("/"):
            built = f"{built}/{segment}"
            if built not in self._resources:
                self._resources[built] = aws.apigateway.Resource(
                    f"{name}-path-{'-'.join(self._slugs(built))}",
                    rest_api=rest_api.id,
                    parent_id=parent_id,
                    path_part=segment,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            parent_id = self._resources[built].id
        return parent_id

    @staticmethod
    def _slugs(path: str) -> list[str]:
        return [segment.strip("{}+").lower() for segment in path.strip("/").split("/")]

    def _declare_route(self, name: str, route: Route) -> None:
        args = self._args
        child = pulumi.ResourceOptions(parent=self)
        resource_id = self._resource_for(name, route.path)
        method = aws.apigateway.Method(
            f"{name}-{route.slug}",
            rest_api=args.rest_api.id,
            resource_id=resource_id,
            http_method=route.method,
            authorization="NONE" if route.public or args.authorization == "API_KEY" else "AWS_IAM",
            api_key_required=not route.public and args.authorization == "API_KEY",
            request_parameters={
                f"method.request.path.{param}": True for param in route.path_parameters
            },
            request_validator_id=self.body_validator.id if route.validate_body else None,
            request_models={"application/json": self.body_model.name}
            if route.validate_body
            else None,
            opts=child,
        )
        integration = aws.apigateway.Integration(
            f"{name}-{route.slug}-integration",
            rest_api=args.rest_api.id,
            resource_id=resource_id,
            http_method=method.http_method,
            type="AWS_PROXY",
            # Lambda is always invoked with POST, whatever the client's method.
            integration_http_method="POST",
            uri=args.function_invoke_arn,
            opts=child,
        )
        # Only this API, this stage, this method and path may invoke the live alias.
        aws.lambda_.Permission(
            f"{name}-{route.slug}-invoke",
            action="lambda:InvokeFunction",
            function=args.function_name,
            qualifier=LIVE_ALIAS,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(
                args.rest_api.execution_arn,
                f"/{API_STAGE_NAME}/{route.method}/{route.execute_api_path}",
            ),
            opts=child,
        )
        self.methods.append(method)
        self.integrations.append(integration)
