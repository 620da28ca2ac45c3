"""{{ cookiecutter.description|replace('\\', '\\\\')|replace('"', '\\"') }}

The skil-sdk plugin ``{{ cookiecutter.name }}``: see :mod:`{{ cookiecutter.module_name }}.provider`.
"""

from {{ cookiecutter.module_name }}.provider import {{ cookiecutter.class_name }}

__all__ = ["{{ cookiecutter.class_name }}"]
