"""Credential templates: a provider's credential slot filled with a stand-in value (severity info).

Documentation, tutorials and unit tests write keys as ``AKIAIOSFODNN7EXAMPLE``, ``ghp_xxxxxxxx``,
``abcd1234abcd1234...`` or ``postgres://user:password@db``, and models reproduce them. They are not key
material, so the secret detectors never report them as leaks; dropping them silently would lose what
they do say: which credentials an app's model or agent is handling (detect-secrets reports them as
secrets). So a provider detector whose value trips a ``template`` filter (``detectors.filters``) hands
the match to ``TEMPLATE`` (``Detector.placeholder_as``), which reports it at severity ``info`` with the
provider named in its rule id (``secret.template/aws_access_key.key_id``). The default rule pack does
not alert on it. ``TEMPLATE``'s own patterns catch the shape no provider pattern accepts: a known key
prefix followed by a filler run (``AKCxxxxxxxxxx``, ``SKxxxx...``, ``sk-xxxxxxxx``).
"""

from __future__ import annotations

from detectors import masking
from detectors.spec import Detector, Pattern
from schemas.finding import Category, Severity

# Key prefixes of providers aiwatch knows (secret_leak / secret_keyed), as written before a filler run.
PREFIXES = (
    r"A3T[A-Z0-9]|AKIA|ASIA|AKC|AP[0-9A-F]|AC|SK|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|xapp-|"
    r"sk-(?:proj-|ant-api03-|svcacct-|admin-)?|[sr]k_(?:live|test)_|npm_|pypi-|hf_|gsk_|xai-|r8_|pplx-|AIza|SG\.|"
    r"sq0atp-|sq0csp-"
)
FILLER = r"(?:[xX]{8,}|\*{8,})"
SCORE = 0.4


TEMPLATE = Detector(
    id="secret.template",
    category=Category.secret_leak,
    severity=Severity.info,
    title="Credential placeholder",
    description=(
        "A credential slot holding a stand-in value instead of key material: a provider's key format whose "
        "value is EXAMPLE/xxxx/a repeated unit/a placeholder word, or a known key prefix followed by a filler "
        "run. Info only: it shows which credentials an app handles, not a leak."
    ),
    patterns=(Pattern("prefix_filler", r"\b(?:" + PREFIXES + r")" + FILLER, SCORE, som=False),),
    mask=masking.mask_secret,
    min_score=0.3,
    enforcement="let it pass: a placeholder is not a credential",
    priority=1,  # any provider format on the same span wins
    overlap_group="sensitive",
)

DETECTORS = (TEMPLATE,)
