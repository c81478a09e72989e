"""Commands of the servicevm API v1."""
