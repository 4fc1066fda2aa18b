"""The reward tests' builders, for the judge attacks here."""

from tests.unit.rewards.conftest import make_inputs, violin  # noqa: F401  (fixtures, registered by import)
