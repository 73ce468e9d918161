"""The embedded local environment: the whole application on this machine, no AWS account.

moto serves the AWS APIs on 127.0.0.1; the resources are created with the names and settings
the layer programs declare (read from those programs run under the Pulumi SDK's mocks); the
handlers run in this process behind an HTTP adapter that speaks API Gateway's REST proxy
format, and S3 upload events reach the processor through a queue with Lambda's asynchronous
retry and dead-letter semantics.
"""
