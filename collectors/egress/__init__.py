"""Shadow-AI collector: AI provider calls found in HTTP proxy / egress logs, as Event v1.

    aiwatch collect egress /var/log/squid/access.log
    tail -F /var/log/nginx/egress.json | aiwatch collect egress -

:func:`read_egress` parses (squid native, nginx JSON, Zeek http/ssl in TSV or JSON) and yields
events; :func:`run_egress` publishes them. The provider host list is
:mod:`collectors.egress.providers`.
"""

from collectors.egress.formats import FORMATS, UnknownFormat
from collectors.egress.providers import PROVIDERS, Provider, build_registry, load_providers
from collectors.egress.publish import EgressError, add_arguments, main, run_egress
from collectors.egress.reader import EgressOptions, EgressReport, read_egress

__all__ = ["FORMATS", "PROVIDERS", "EgressError", "EgressOptions", "EgressReport", "Provider", "UnknownFormat",
           "add_arguments", "build_registry", "load_providers", "main", "read_egress", "run_egress"]
