"""Required tags on every taggable resource (shared/tags.py applies them per program).

A resource type is taggable when its pulumi-aws class has a `tags` property: the same test the
tagging transformation uses, so the policy and the programs agree on what must carry tags.
Tags the provider adds (`aws:defaultTags`) count.
"""

from __future__ import annotations

import importlib
import keyword
from collections.abc import Iterator, Mapping
from functools import lru_cache

from pulumi_policy import ResourceValidationArgs, Severity

from policy.model import PRODUCT, Control, Finding
from policy.values import get
from shared.tags import REQUIRED_TAG_KEYS


@lru_cache(maxsize=512)
def is_taggable_type(resource_type: str) -> bool:
    """`aws:s3/bucket:Bucket` -> whether pulumi_aws.s3.Bucket has a `tags` property."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return False
    module = parts[1].split("/")[0]
    if keyword.iskeyword(module):
        module = f"{module}_"
    try:
        package = importlib.import_module(f"pulumi_aws.{module}")
    except ImportError:
        return False
    resource_class = getattr(package, parts[2], None)
    return resource_class is not None and hasattr(resource_class, "tags")


def _default_tags(args: ResourceValidationArgs) -> Mapping[str, object]:
    if args.provider is None:
        return {}
    tags = get(args.provider.props, "defaultTags", "tags")
    return tags if isinstance(tags, Mapping) else {}


def check_required_tags(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not is_taggable_type(args.resource_type):
        return
    own = get(args.props, "tags")
    tags = {**_default_tags(args), **(own if isinstance(own, Mapping) else {})}
    missing = [key for key in REQUIRED_TAG_KEYS if not str(tags.get(key) or "").strip()]
    if missing:
        yield Finding(args.urn, f"{args.name} lacks the required tags {', '.join(missing)}")


CONTROLS = (
    Control(
        "Tags.required",
        "required-tags",
        "Every taggable resource carries the product's required tags",
        f"Tags {', '.join(REQUIRED_TAG_KEYS)} are set and non-empty (a product rule).",
        framework=PRODUCT,
        severity=Severity.LOW,
        resource_check=check_required_tags,
        applicable=is_taggable_type,
    ),
)
