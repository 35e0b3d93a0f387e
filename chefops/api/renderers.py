from djangorestframework_camel_case.render import CamelCaseJSONRenderer as _LibraryRenderer


class CamelCaseJSONRenderer(_LibraryRenderer):
    """snake_case serializer output rendered as camelCase JSON, ``charset=utf-8``."""

    charset = "utf-8"
