"""The simulator: a VPC, its traffic, and the logs AWS would deliver for it (``run.simulate``;
the scenarios and delivery names in ``scenarios``, light enough for the command line parser)."""
