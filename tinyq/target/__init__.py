"""Targets: where generated C is compiled and run (host, emulator, device)."""
