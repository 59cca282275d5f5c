"""Where bytes come from: local paths, S3 prefixes, CloudWatch Logs (units.expand)."""

from natlens.sources.units import SourceOptions, Unit, expand

__all__ = ["SourceOptions", "Unit", "expand"]
