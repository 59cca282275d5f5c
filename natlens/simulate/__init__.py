"""The simulator: a VPC, its traffic, and the logs AWS would deliver for it (run.simulate)."""

from natlens.simulate.run import DELIVERIES, SimulateOptions, simulate
from natlens.simulate.scenarios import SCENARIOS

__all__ = ["DELIVERIES", "SCENARIOS", "SimulateOptions", "simulate"]
