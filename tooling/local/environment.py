"""The whole application on this machine: emulator, resources, API and S3 trigger together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tooling.local.api_gateway import DEFAULT_API_PORT, LOCAL_API_ID, LocalApiGateway, serve
from tooling.local.emulator import (
    DEFAULT_EMULATOR_PORT,
    EMULATOR_ACCOUNT_ID,
    EMULATOR_CREDENTIALS,
    EMULATOR_REGION,
    ensure_port_free,
    moto_server,
)
from tooling.local.functions import LambdaContext, load_handler, temporary_environment
from tooling.local.provision import LocalResources, client, provision
from tooling.local.secret_rotation import rotate_immediately
from tooling.local.trigger import AsyncInvoker, NotificationPoller
from tooling.verify.deployment import Deployment, local_deployment_from

# Variables a developer's shell may hold that would send the handlers somewhere else.
_ISOLATED_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")


@dataclass
class LocalEnvironment:
    """A running local environment: where everything is, and the live trigger."""

    resources: LocalResources
    emulator_url: str
    api_url: str
    poller: NotificationPoller

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator, with its dummy credentials."""
        return client(service, self.emulator_url)

    def outputs(self) -> dict[str, dict[str, Any]]:
        """The five layers' outputs as this environment stands for them.

        What the programs export under the mocks, with every value the emulator or the local
        API assigned itself in place of the placeholder: the key and secret ARNs, the queue's
        URL, the topic's ARN, the API's id and URLs.
        """
        runs = self.resources.synthesized
        exported = {layer: run.export_values() for layer, run in runs.items()}
        placeholder_api_url = str(exported["api"]["api_gateway_url"])
        replacements = {
            str(exported["security"]["kms_key_arn"]): self.resources.kms_key_arn,
            str(exported["security"]["secrets_manager_arn"]): self.resources.secret_arn,
            str(exported["storage"]["dead_letter_queue_url"]): self.resources.dead_letter_queue_url,
            str(exported["observability"]["sns_topic_arn"]): self.resources.alarm_topic_arn,
            str(exported["api"]["rest_api_id"]): LOCAL_API_ID,
        }

        def local(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            if value.startswith(placeholder_api_url):
                return self.api_url + value.removeprefix(placeholder_api_url)
            return replacements.get(value, value)

        return {
            layer: {key: local(value) for key, value in values.items()}
            for layer, values in exported.items()
        }

    def deployment(self) -> Deployment:
        """This environment as `nox -s verify -- --target local` reaches it."""
        return local_deployment_from(
            self.resources.names.environment,
            self.emulator_url,
            self.outputs(),
            self.resources.api_environment["APP_VERSION"],
        )


def _context_factory(resources: LocalResources, function_name: str) -> Any:
    names = resources.names

    def make(request_id: str) -> LambdaContext:
        return LambdaContext(
            function_name=function_name,
            invoked_function_arn=f"{names.function_arn(function_name)}:live",
            log_group_name=names.function_log_group(function_name),
            aws_request_id=request_id,
        )

    return make


@contextmanager
def local_environment(
    *,
    api_port: int = DEFAULT_API_PORT,
    emulator_port: int = DEFAULT_EMULATOR_PORT,
    retry_delay_seconds: float = 0.2,
) -> Iterator[LocalEnvironment]:
    """Start everything; on exit stop the trigger, the API and the emulator, in that order."""
    # Both ports are checked before anything starts, so a busy port costs nothing.
    ensure_port_free(emulator_port, "AWS emulator", "--emulator-port")
    ensure_port_free(api_port, "local API", "--api-port")
    with moto_server(emulator_port) as emulator:
        endpoint = {**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": emulator.endpoint_url}
        with temporary_environment(endpoint, remove=_ISOLATED_VARIABLES):
            resources = provision(emulator.endpoint_url)
            names = resources.names
            # As on AWS, the secret's first value is made by the rotation function, which
            # Secrets Manager runs at once when the security layer turns rotation on.
            rotate_immediately(
                load_handler("secret_rotation", {}),
                resources.secret_arn,
                account_id=EMULATOR_ACCOUNT_ID,
                region=EMULATOR_REGION,
            )
            processor = load_handler(
                "s3_processor",
                {
                    **resources.processor_environment,
                    "AWS_LAMBDA_FUNCTION_NAME": names.s3_processor_function,
                },
            )
            api = load_handler(
                "api_handler",
                {
                    **resources.api_environment,
                    "AWS_LAMBDA_FUNCTION_NAME": names.api_handler_function,
                },
            )
            sqs = client("sqs", emulator.endpoint_url)
            invoker = AsyncInvoker(
                handler=processor.lambda_handler,
                context_factory=_context_factory(resources, names.s3_processor_function),
                function_arn=f"{names.function_arn(names.s3_processor_function)}:live",
                maximum_retry_attempts=resources.async_invoke.maximum_retry_attempts,
                send_to_dead_letter_queue=lambda body: sqs.send_message(
                    QueueUrl=resources.dead_letter_queue_url, MessageBody=body
                ),
                retry_delay_seconds=retry_delay_seconds,
            )
            poller = NotificationPoller(
                sqs, client("s3", emulator.endpoint_url), resources.notification_queue_url, invoker
            )
            gateway = LocalApiGateway(
                api.lambda_handler, _context_factory(resources, names.api_handler_function)
            )
            poller.start()
            try:
                with serve(gateway, api_port) as api_url:
                    yield LocalEnvironment(resources, emulator.endpoint_url, api_url, poller)
            finally:
                poller.stop()
