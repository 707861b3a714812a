"""`make bench`: what the gateway adds to a Lightning payment, measured side by side.

Run ``python -m bench.run`` (options: ``--quick``, ``--only NAME``, ``--no-regtest``). The
modules here measure; none of them asserts anything about timings.
"""
