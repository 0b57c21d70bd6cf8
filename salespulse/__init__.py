"""SalesPulse core: settings, canonical schema, KPI definitions, CLI and the event simulator.

Imports neither pyspark nor tensorflow, so the CLI, simulator and dashboard start fast.
"""

__version__ = "0.1.0"
