"""The agent's process tree: lineage, executables and argv of every process."""
