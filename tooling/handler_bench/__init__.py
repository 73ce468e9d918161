"""Benchmark of the two Lambda handlers, printed as one table with a verdict per target.

Measured side by side in one run (`nox -s bench`, or `python -m tooling.handler_bench`):

- warm per-call latency of each API route, and of a bare handler that only returns a JSON body
  (the floor); targets: GET /health within 20x and POST /process (secret cached) within 30x
  (latency.py);
- S3 processor throughput on small objects, and the S3 and DynamoDB round trips per object: a
  first version, a duplicate delivery, a new version of a processed key (the result is replaced
  after reading its sequencer) and an older version delivered late (nothing is written)
  (processor.py);
- peak memory growth while the processor handles a 256 MiB object; target: under 32 MiB
  (memory.py);
- cold start (interpreter start plus handler import) of each function, against
  `import boto3` alone; target: the API handler imports no slower than boto3 (cold_start.py).

AWS is moto's server (tooling.local.emulator's) in a child process on 127.0.0.1, so requests
cross a real HTTP connection and the large object lives in the server's memory, not in the
measuring process (aws.py). The functions run with the names, environments, resources and
events the handler tests use (tooling.function_fixtures), loaded as tooling.local loads them.
Statistics and the machine's description are pyperf's. This is a benchmark, not a test: it
reports, and `--strict` exits 1 on a missed target.
"""
