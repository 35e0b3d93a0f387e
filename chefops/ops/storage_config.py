"""Settings-time half of chefops.ops.storage: one STORAGES entry from an *_STORAGE_URL.

No Django import here: chefops.settings imports this module. The URL forms are described in
chefops/ops/storage.py and README "Archive and backup storage".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

S3_BACKEND = "chefops.ops.storage_s3.S3Storage"
LOCAL_BACKEND = "django.core.files.storage.FileSystemStorage"
SETTING_DIR_BACKEND = "chefops.ops.storage.SettingDirStorage"

_S3_PARAMS = {
    "endpoint_url": "endpoint_url",
    "region": "region_name",
    "addressing_style": "addressing_style",
    "access_key_id": "access_key",
    "secret_access_key": "secret_key",
}
# Archives read through S3File are buffered in memory up to this size, then on disk.
_S3_MEMORY_BUFFER = 8 * 1024 * 1024


class StorageURLError(ValueError):
    pass


def storage_config(url: str, *, variable: str, dir_setting: str) -> dict[str, Any]:
    """One STORAGES entry from ``url`` (see the module docstring). ``variable`` names the
    environment variable in error messages; ``dir_setting`` is the local default's setting."""
    if not url:
        return {"BACKEND": SETTING_DIR_BACKEND, "OPTIONS": {"setting": dir_setting}}
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StorageURLError(f"{variable}: a file URL is file:///absolute/path, not {url!r}")
        return {"BACKEND": LOCAL_BACKEND, "OPTIONS": {"location": unquote(parts.path)}}
    if parts.scheme != "s3":
        raise StorageURLError(
            f"{variable} must be empty, file:///path or s3://bucket/prefix?…, not {url!r}"
        )
    if not parts.hostname:
        raise StorageURLError(f"{variable}: no bucket in {url!r} (s3://bucket/prefix)")
    params = parse_qs(parts.query, keep_blank_values=False, strict_parsing=False)
    unknown = sorted(set(params) - set(_S3_PARAMS))
    if unknown:
        raise StorageURLError(
            f"{variable}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_S3_PARAMS))}"
        )
    options: dict[str, Any] = {
        "bucket_name": parts.netloc,
        "location": unquote(parts.path).strip("/"),
        # Private objects, never presigned links: these storages are read by the app only.
        "default_acl": None,
        "querystring_auth": False,
        "file_overwrite": True,
        "max_memory_size": _S3_MEMORY_BUFFER,
    }
    for key, values in params.items():
        options[_S3_PARAMS[key]] = values[-1]
    if options.get("addressing_style") not in (None, "path", "virtual", "auto"):
        raise StorageURLError(f"{variable}: addressing_style is path, virtual or auto")
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def is_local_config(config: dict[str, Any]) -> bool:
    return config["BACKEND"] in (LOCAL_BACKEND, SETTING_DIR_BACKEND)
