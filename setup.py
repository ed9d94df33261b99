"""Builds the compiled part of the package; all metadata is in pyproject.toml.

The cffi extension agent._libbpf_cffi (the libbpf binding, API mode) is
generated from agent/libbpf/_build.py. The record header
ebpf/include/events.h is shipped inside the package as agent/events/events.h
(agent/events/layout.py reads it there when no source checkout is around).
The SECL parser's tables are generated into the package (codegen/_secl_parsetab.py).
"""

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "agent" / "events" / "events.h"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).parent / "ebpf" / "include" / "events.h", target)
        # the SECL parser's LALR tables, read at import instead of built (codegen/parser.py)
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from codegen.parser import write_tables; write_tables(sys.argv[2])",
                        str(Path(__file__).resolve().parent), str(Path(self.build_lib).resolve() / "codegen")],
                       check=True)


setup(cffi_modules=["agent/libbpf/_build.py:ffibuilder"], cmdclass={"build_py": BuildPy})
