"""cxlab: a Jupyter-based research workbench for customer-experience teams.

Pull journey exports and customer voice into a workspace, model where and why customers
leave, and report pain points per moment of truth.

>>> import cxlab
>>> jm = cxlab.JourneyMap.default()
>>> ws = cxlab.connect("data/cxlab.duckdb")            # doctest: +SKIP
"""
from .journey import JourneyMap
from .workspace import PullResult, Workspace, connect

__version__ = "0.1.0"

__all__ = ["JourneyMap", "Workspace", "PullResult", "connect", "__version__"]
