"""Where the processing result of an uploaded object is stored: one mapping for both functions.

The mapping is `<results prefix><upload key>.json`; the upload `uploads/a b.csv` has its result
at `results/uploads/a b.csv.json`. Keeping the whole upload key (prefix included) makes the
mapping trivially reversible and readable in the console, and the results prefix differs from the
upload prefix, so writing a result can never trigger the processor again.

It lives in lambdas/common/, which shared/packaging.py copies into every function archive at
the root, next to the function's own files: both functions import this one file.
"""

from __future__ import annotations

RESULT_SUFFIX = ".json"

# S3 rejects keys longer than 1024 bytes of UTF-8.
MAX_S3_KEY_BYTES = 1024


class ResultKeyError(ValueError):
    """The upload key cannot name a result object."""


def result_key_for(upload_key: str, results_prefix: str) -> str:
    """Return the S3 key of the result document for `upload_key` (already URL-decoded)."""
    if not upload_key:
        raise ResultKeyError("the object key is empty")
    result_key = f"{results_prefix}{upload_key}{RESULT_SUFFIX}"
    try:
        encoded = result_key.encode("utf-8")
    except UnicodeEncodeError as error:
        # Lone surrogates (from a hostile path or a badly decoded key) are not valid S3 keys.
        raise ResultKeyError("the object key is not valid Unicode") from error
    if len(encoded) > MAX_S3_KEY_BYTES:
        raise ResultKeyError(
            f"the object key is too long for a result key: results are stored at "
            f"'{results_prefix}<key>{RESULT_SUFFIX}', which S3 limits to {MAX_S3_KEY_BYTES} bytes"
        )
    return result_key
