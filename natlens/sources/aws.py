"""boto3 clients from the standard credential chain; read-only calls only."""

from __future__ import annotations

from typing import Any

from natlens.errors import EnvironmentProblem, SourceError


def make_client(
    service: str, profile: str | None, region: str | None, endpoint_url: str | None
) -> Any:
    try:
        import boto3
        import botocore.exceptions
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise EnvironmentProblem("boto3 is not installed", hint="pip install natlens") from exc
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise SourceError(str(exc), hint="check --profile against ~/.aws/config") from None
    if session.region_name is None:
        # S3 and CloudWatch Logs need a region to sign requests; us-east-1 is AWS's own default.
        session = boto3.Session(profile_name=profile, region_name="us-east-1")
    return session.client(service, endpoint_url=endpoint_url)


def describe_error(exc: Exception) -> str:
    """A one-line account of a botocore error, with the AWS error code where there is one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    return f"{type(exc).__name__}: {exc}"
