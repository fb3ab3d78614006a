"""Tests of etok.tools (the etok-tools command and its modules)."""
