"""The official Fedimint client (npm WASM build) under Node, driven from Python.

`js/` holds the pinned npm package (`make interop-deps` installs it) and the Node driver;
`driver.py` is `OfficialClient`, which starts the driver and speaks JSON lines to it. Used by
the interop and regtest tests, the `make regtest` demo and `make bench`.
"""
