import subprocess
import sys

import dualmap as dm


def test_all_names_exist_and_have_docstrings():
    for name in dm.__all__:
        obj = getattr(dm, name)
        assert obj.__doc__ and obj.__doc__.strip(), name


def test_star_import():
    namespace = {}
    exec("from dualmap import *", namespace)
    assert set(dm.__all__) <= set(namespace)


def test_import_loads_no_heavy_optional_library():
    code = ("import sys, dualmap; heavy = [m for m in ('faiss', 'ot', 'matplotlib', 'dask') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
