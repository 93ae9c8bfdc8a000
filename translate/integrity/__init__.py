"""Limits and checks on what translate reads from outside: tensor extents and parameter budgets of
weights files (`bounds`), downloads with a deadline (`download`), pinned hashes of files found by
name (`pins`). Imports only errors, files and torch, so checkpoint loading can use it."""
