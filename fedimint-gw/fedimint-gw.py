#!/usr/bin/env python3
"""fedimint-gw for `reckless install fedimint-gw` (and lightningd/plugins): a thin entry.

reckless looks for a directory named after the plugin holding `{name}.py` and a dependency
file; it copies that directory (following symlinks) and runs this file in a virtual
environment built from `requirements.txt`. `fedimint_gw` and `plugin` here are symlinks to
the package and to the plugin's wiring at the top of the repository, so there is one copy of
the code: this file only runs `plugin/fedimint_gateway.py`.
"""

import os
import runpy

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    runpy.run_path(os.path.join(here, "plugin", "fedimint_gateway.py"), run_name="__main__")
