"""A cheap Argon2 for tests that create many users (same code path, tiny parameters).

Tests of the real hasher's parameters and of hash upgrades switch back to the settings'.
"""

from companies.hashers import SizedArgon2PasswordHasher


class FastArgon2PasswordHasher(SizedArgon2PasswordHasher):
    time_cost = 1
    memory_cost = 8
    parallelism = 1
