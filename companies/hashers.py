from django.contrib.auth.hashers import Argon2PasswordHasher


class SizedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id sized for a 512 MB container: ~19 MiB per hash instead of Django's ~100 MiB.

    Parameters follow OWASP's minimum recommendation (m=19 MiB, t=2, p=1). Hashes made with
    other parameters are upgraded on the next successful login (``must_update``).
    """

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
