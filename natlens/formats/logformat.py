"""Where a file's field order comes from: its header, ``--log-format``, or the default format.

Never from the token count alone when more than one format could fit (a token-count
dissect misreads every custom format of the same length).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from natlens.errors import UsageError
from natlens.schema import DEFAULT_FORMAT, FIELD_NAME_RE, FIELDS_BY_NAME, LOG_STATUSES

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Values that look like names in a header but are AWS resource ids: a record, not a header.
_RESOURCE_ID = re.compile(
    r"(?:eni|i|vpc|subnet|tgw|tgw-attach|vpce|nat|igw|pl|fl|sg|acl|rtb)-[0-9a-f]+"
)
# CloudWatch Logs export lines start with the event time (docs/aws.md §2.1, §2.2).
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_DIGITS = re.compile(r"\d+")


def parse_log_format(text: str) -> tuple[str, ...]:
    """Parse a format string as ``aws ec2 describe-flow-logs`` prints it.

    Accepts ``${version} ${srcaddr} ...`` and the plain ``version srcaddr ...`` form.
    """
    text = text.strip()
    if not text:
        raise UsageError("--log-format is empty", hint="give the flow log's LogFormat string")
    if "$" in text:
        names = _PLACEHOLDER.findall(text)
        leftover = _PLACEHOLDER.sub(" ", text)
        if leftover.strip() or not names:
            raise UsageError(
                f"--log-format {text!r} is not a format string: outside ${{...}} it has "
                f"{leftover.strip()!r}",
                hint="write it as AWS does: '${version} ${account-id} ${interface-id} ...'",
            )
    else:
        names = text.split()
    bad = [name for name in names if not FIELD_NAME_RE.fullmatch(name.strip())]
    if bad:
        raise UsageError(
            f"--log-format names {bad[0]!r}, which is not a field name",
            hint="field names are lower case words joined by '-', e.g. pkt-srcaddr",
        )
    names = [name.strip() for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"--log-format names {duplicates[0]!r} twice")
    return tuple(names)


def format_string(fields: tuple[str, ...]) -> str:
    return " ".join("${" + name + "}" for name in fields)


def header_fields(line: str) -> tuple[str, ...] | None:
    """The fields of a header line (S3 text files start with one, docs/aws.md §2.2), or None."""
    tokens = line.split()
    if not tokens or len(set(tokens)) != len(tokens):
        return None
    if not all(FIELD_NAME_RE.fullmatch(t) for t in tokens):
        return None
    if any(_RESOURCE_ID.fullmatch(t) for t in tokens):
        return None
    if not any(t in FIELDS_BY_NAME for t in tokens):
        return None
    return tuple(tokens)


def fits_default(tokens: list[str]) -> bool:
    """True when tokens read as a default-format record (docs/aws.md §1.1, §3.1, §3.2)."""
    if len(tokens) != len(DEFAULT_FORMAT):
        return False
    version, _account, interface, *_middle, action, status = tokens
    numeric = tokens[5:12]  # srcport dstport protocol packets bytes start end
    return (
        version == "2"
        and (interface.startswith("eni-") or interface == "-")
        and all(t == "-" or _DIGITS.fullmatch(t) for t in numeric)
        and action in ("ACCEPT", "REJECT", "-")
        and status in LOG_STATUSES
    )


def is_timestamp(token: str) -> bool:
    return _ISO_TIME.fullmatch(token) is not None


@dataclass(frozen=True)
class LineFormat:
    """How to read the record lines of one file."""

    fields: tuple[str, ...]
    origin: str  # "header", "--log-format", "default", "describe-flow-logs"
    prefix: int = 0  # leading tokens that belong to the container: event time, stream name

    def describe(self) -> str:
        text = f"{len(self.fields)} fields from {self.origin}"
        if self.prefix:
            text += f", after {self.prefix} CloudWatch Logs export column(s)"
        return text


def resolve_format(
    first_record: str, given: tuple[str, ...] | None, given_origin: str = "--log-format"
) -> LineFormat | None:
    """The format for a file without a header, judged from its first record line.

    CloudWatch Logs exports put the event time (and, from ``aws logs tail``, the stream name)
    before each record; those leading columns are recognised by the timestamp and counted.
    Returns None when nothing fits: the caller asks for --log-format.
    """
    tokens = first_record.split()
    prefixes = [0]
    if tokens and is_timestamp(tokens[0]):
        prefixes = [1, 2]
    if given is not None:
        for prefix in prefixes:
            if len(tokens) - prefix == len(given):
                return LineFormat(given, given_origin, prefix)
        # Nothing lines up: read with the given format; lines report their field count.
        return LineFormat(given, given_origin, prefixes[0])
    for prefix in prefixes:
        if fits_default(tokens[prefix:]):
            return LineFormat(DEFAULT_FORMAT, "default", prefix)
    return None
