"""fedimint-gw: a Core Lightning plugin that is a Lightning gateway for many federations."""

__version__ = "0.1.0"
