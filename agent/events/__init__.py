"""Kernel records -> event documents."""
