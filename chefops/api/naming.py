"""camelCase <-> snake_case for API keys (the wire is camelCase, Python is snake_case)."""

from djangorestframework_camel_case.util import (
    camel_to_underscore,
    camelize_re,
    underscore_to_camel,
)


def to_camel(name: str) -> str:
    return camelize_re.sub(underscore_to_camel, name) if "_" in name else name


def to_snake(name: str) -> str:
    return str(camel_to_underscore(name))
