"""Ingestion throughput on a generated documentation corpus (hashing embedder, fresh embedded database).

    python bench/ingest.py [--chunks 50000] [--seed 7] [--json]

Writes a deterministic, seeded corpus of Markdown files (headings, paragraphs of technical prose,
lists, code blocks, identifiers, error codes) into a temp folder, then measures through
``Ingestor.ingest`` (folder walk + loader + chunker + embedder + database):

1. first ingest of the whole corpus (chunks/s, docs/s, seconds);
2. re-ingest of the unchanged corpus (seconds; speed ratio first / re-ingest);
3. re-ingest after changing 1% of the documents.

Targets (issue 2): first ingest >= 1,000 chunks/s on a 2-core machine; unchanged re-ingest
>= 20x faster than the first. The temp folder and the database are deleted at exit.

Besides wall time, each run reports the CPU seconds of this process and of the local PostgreSQL
server (this machine is shared, so CPU time is the load-independent cost), and the wall time per
pipeline step. Runtime is dominated by the first ingest (about 50,000 / chunks-per-second).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import fresh_database, machine, table  # noqa: E402

# --------------------------------------------------------------------------- vocabulary

PRODUCTS = (
    "Nimbus", "Quarry", "Harbor", "Lattice", "Beacon", "Cobalt", "Vertex", "Meridian", "Tessera", "Orbit",
    "Pylon", "Sentry", "Atlas", "Ember", "Fathom", "Granite", "Helix", "Ion", "Juniper", "Kestrel",
)
AREAS = (
    "getting-started", "installation", "configuration", "authentication", "authorization", "networking",
    "storage", "databases", "observability", "logging", "metrics", "tracing", "deployment", "scaling",
    "security", "billing", "webhooks", "api-reference", "cli", "sdk", "migration", "troubleshooting",
    "backup", "replication", "caching", "queues", "scheduling", "integrations", "permissions", "releases",
)
NOUNS = (
    "cluster", "node", "pod", "container", "image", "registry", "namespace", "tenant", "workspace", "project",
    "bucket", "volume", "snapshot", "replica", "shard", "partition", "index", "table", "schema", "column",
    "query", "transaction", "connection", "pool", "session", "token", "secret", "certificate", "key", "policy",
    "role", "permission", "user", "group", "service", "endpoint", "route", "gateway", "proxy", "load balancer",
    "firewall", "subnet", "region", "zone", "instance", "function", "trigger", "event", "webhook", "payload",
    "request", "response", "header", "cookie", "timeout", "retry", "backoff", "quota", "limit", "rate limiter",
    "cache", "queue", "topic", "subscription", "consumer", "producer", "worker", "job", "cron schedule", "pipeline",
    "build", "artifact", "release", "rollback", "deployment", "manifest", "template", "variable", "environment",
    "config file", "flag", "setting", "option", "parameter", "argument", "plugin", "extension", "module", "package",
    "dependency", "lockfile", "version", "changelog", "migration", "backup", "restore", "checkpoint", "log", "metric",
    "trace", "span", "dashboard", "alert", "threshold", "incident", "audit log", "report", "invoice", "plan",
    "account", "organization", "API key", "client", "SDK", "library", "driver", "adapter", "connector", "socket",
    "stream", "buffer", "batch", "chunk", "file", "directory", "path", "URL", "domain", "DNS record", "TLS handshake",
    "signature", "hash", "checksum", "encryption key", "vault", "identity provider", "SAML assertion", "OAuth scope",
    "refresh token", "access token", "callback", "redirect URI", "health check", "probe", "heartbeat", "lease",
    "lock", "mutex", "thread", "process", "memory", "CPU", "disk", "throughput", "latency", "bandwidth",
    "allocator", "annotation", "appliance", "approval", "archive", "attachment", "backlog", "baseline", "blueprint",
    "bootstrap", "branch", "breakpoint", "browser", "bundle", "capability", "catalog", "channel", "cipher", "clock",
    "codec", "collector", "commit", "compiler", "compute unit", "conflict", "console", "contract", "cursor", "daemon",
    "datastore", "deadline", "descriptor", "device", "digest", "dispatcher", "document", "draft", "emulator",
    "entitlement", "entrypoint", "estimate", "exception", "executor", "fallback", "feed", "field", "fingerprint",
    "firmware", "fixture", "footprint", "fork", "frame", "gauge", "generator", "handler", "hook", "host", "hypervisor",
    "inventory", "issuer", "kernel", "keystore", "label", "layer", "ledger", "lifecycle", "listener", "locale",
    "mailbox", "mapping", "marker", "message", "middleware", "mirror", "monitor", "notebook", "notification",
    "object", "offset", "operator", "orchestrator", "outage", "owner", "page", "patch", "peer", "pipeline stage",
    "placeholder", "platform", "port", "preset", "principal", "profile", "prompt", "protocol", "provider", "publisher",
    "quorum", "reader", "receipt", "recipe", "record", "reference", "relay", "replay", "repository", "resolver",
    "revision", "rule", "runbook", "runner", "runtime", "sandbox", "scanner", "scheduler", "scope", "selector",
    "sequence", "serializer", "server", "signal", "sink", "slot", "source", "spec", "spool", "stage", "statement",
    "step", "store", "strategy", "summary", "supervisor", "switch", "tablespace", "target", "task", "team", "tenant ID",
    "terminal", "ticket", "timer", "toolchain", "topology", "transport", "tunnel", "upload", "validator", "vendor",
    "view", "watcher", "widget", "window", "wizard", "writer", "zone file",
)
VERBS = (
    "configure", "enable", "disable", "create", "delete", "update", "rotate", "renew", "revoke", "inspect",
    "monitor", "deploy", "roll back", "scale", "restart", "drain", "cordon", "migrate", "upgrade", "downgrade",
    "install", "uninstall", "register", "authenticate", "authorize", "validate", "verify", "sign", "encrypt",
    "decrypt", "compress", "export", "import", "replicate", "restore", "snapshot", "schedule", "retry", "throttle",
    "cache", "invalidate", "purge", "index", "query", "stream", "batch", "paginate", "filter", "sort", "aggregate",
    "tag", "label", "annotate", "provision", "deprovision", "attach", "detach", "mount", "unmount", "forward",
    "proxy", "route", "resolve", "debug", "trace", "profile", "benchmark", "tune", "override", "pin", "lock",
    "archive", "audit", "bootstrap", "bundle", "clone", "compact", "compile", "deduplicate", "defragment", "detect",
    "discover", "dispatch", "enroll", "estimate", "evict", "expire", "fetch", "flush", "freeze", "generate",
    "hydrate", "isolate", "merge", "mirror", "notify", "normalize", "observe", "partition", "patch", "poll",
    "preview", "prune", "publish", "quarantine", "rebalance", "rebuild", "reconcile", "redact", "refresh", "reindex",
    "release", "rename", "reserve", "reset", "resize", "resume", "revert", "sanitize", "seed", "serialize", "shard",
    "simulate", "split", "suspend", "synchronize", "truncate", "unlock", "unpin", "vacuum", "warm up", "whitelist",
)
ADJECTIVES = (
    "default", "custom", "managed", "dedicated", "shared", "private", "public", "regional", "global", "primary",
    "secondary", "read-only", "writable", "ephemeral", "persistent", "encrypted", "compressed", "idempotent",
    "asynchronous", "synchronous", "incremental", "full", "partial", "stale", "healthy", "degraded", "pending",
    "active", "inactive", "deprecated", "experimental", "stable", "legacy", "internal", "external", "upstream",
    "downstream", "temporary", "scoped", "signed", "unsigned", "nested", "optional", "required", "maximum",
    "minimum", "concurrent", "sequential", "distributed", "local", "remote", "verbose", "structured",
)
ADVERBS = (
    "automatically", "manually", "periodically", "immediately", "eventually", "atomically", "safely",
    "transparently", "explicitly", "implicitly", "lazily", "eagerly", "gracefully", "silently", "concurrently",
)
CONNECTIVES = (
    "By default,", "In most deployments,", "When this happens,", "For example,", "In practice,", "Note that",
    "If needed,", "Alternatively,", "As a rule,", "Under heavy load,", "After an upgrade,", "Before you begin,",
    "In a multi-tenant setup,", "On the free plan,", "During a rolling update,", "For compliance reasons,",
)
FILES = (
    "config.yaml", "settings.toml", ".env", "values.yaml", "docker-compose.yml", "nimbus.json", "policy.hcl",
    "Procfile", "pyproject.toml", "package.json", "main.tf", "Dockerfile", "nginx.conf", "service.yaml",
)
# Topical vocabulary: what makes one area's pages differ from another's, as on a real documentation site.
AREA_TERMS = {
    "getting-started": "quickstart tutorial prerequisites sandbox trial onboarding walkthrough sample hello-world starter playground signup console wizard checklist overview",
    "installation": "installer binary tarball homebrew apt-get rpm wheel pip systemd daemon uninstaller prerequisites architecture arm64 amd64 glibc musl",
    "configuration": "precedence override defaults profile dotenv yaml toml interpolation placeholder reload hot-reload validation schema inheritance layering overlay",
    "authentication": "login password passkey webauthn mfa totp otp sso oidc saml jwt bearer credential lockout session-cookie magic-link",
    "authorization": "rbac abac grant deny allowlist denylist principal resource scope entitlement delegation impersonation least-privilege boundary assume-role",
    "networking": "ingress egress cidr nat peering mtu keepalive vpc subnet ipv6 dual-stack anycast bgp latency jitter packet",
    "storage": "blob object block filesystem nfs iops throughput tiering lifecycle retention versioning multipart presigned archive glacier erasure-coding",
    "databases": "postgres mysql sqlite vacuum autovacuum wal replication-slot deadlock isolation serializable foreign-key constraint sequence upsert cursor",
    "observability": "telemetry opentelemetry exporter collector sampling cardinality exemplar slo sli error-budget burn-rate golden-signals saturation instrumentation",
    "logging": "logfmt syslog journald stdout stderr verbosity redaction pii log-level rotation logrotate shipping fluentd ndjson correlation-id",
    "metrics": "counter gauge histogram summary quantile percentile prometheus scrape pushgateway label-set aggregation downsampling rollup timeseries retention-period",
    "tracing": "trace-id span-id baggage propagation w3c traceparent sampler parent-span child-span waterfall flamegraph critical-path instrumented jaeger zipkin",
    "deployment": "blue-green canary rollout rollback helm kustomize terraform manifest artifact promotion staging production preview freeze approval",
    "scaling": "autoscaler horizontal vertical replicas hpa cooldown burst headroom capacity provisioned concurrency cold-start warm-pool sharding partitioning",
    "security": "vulnerability cve sbom attestation provenance sigstore cosign hardening sandboxing seccomp apparmor secrets-scanning pentest threat-model kms hsm",
    "billing": "invoice subscription seat usage-based metering overage proration refund coupon credit-card tax vat receipt billing-cycle spend-cap",
    "webhooks": "delivery signature hmac replay idempotency-key endpoint-secret retry-schedule dead-letter fan-out subscriber event-type envelope ack timestamp-tolerance",
    "api-reference": "endpoint pagination cursor offset sorting filtering rate-limit status-code idempotent etag conditional-request openapi swagger deprecation sunset",
    "cli": "subcommand flag shell completion zsh fish powershell alias stdin piping exit-code dry-run interactive non-interactive config-path verbose",
    "sdk": "client-library typescript python go java rust async await promise callback retry-policy middleware interceptor serializer typed",
    "migration": "upgrade-path breaking-change deprecation compatibility shim codemod backfill dual-write cutover downtime zero-downtime schema-migration feature-flag rollback-plan",
    "troubleshooting": "symptom diagnosis stacktrace core-dump oom segfault timeout crashloop hang deadlock flaky reproduce workaround known-issue support-bundle",
    "backup": "snapshot point-in-time pitr restore retention offsite encryption-at-rest incremental differential full-backup verification rto rpo vault schedule",
    "replication": "primary standby follower leader quorum consensus raft failover switchover lag synchronous asynchronous split-brain fencing witness",
    "caching": "ttl eviction lru lfu warmup stampede invalidation write-through write-back cdn edge origin hit-ratio stale-while-revalidate memoize",
    "queues": "broker topic partition offset consumer-group ack nack visibility-timeout dead-letter-queue fifo ordering backpressure prefetch redelivery poison-message",
    "scheduling": "cron interval timezone jitter backfill catchup concurrency-limit trigger dag task-run retry-delay sla calendar misfire lease",
    "integrations": "slack github gitlab jira pagerduty datadog zapier oauth-app connector sync marketplace installation-token bot scopes callback-url",
    "permissions": "owner admin editor viewer member guest invitation team group-sync scim provisioning deprovisioning audit access-review custom-role",
    "releases": "changelog semver release-notes lts patch minor major prerelease beta nightly hotfix backport end-of-life support-window upgrade-notice",
}
FEATURE_PARTS = (
    ("Storm", "Tide", "Flux", "Sky", "Iron", "Quick", "Deep", "Bright", "Silent", "Swift", "Cold", "Red", "Blue",
     "North", "Star", "Moon", "Sun", "Wind", "Stone", "Glass", "Echo", "Pulse", "Core", "Edge", "Wave", "Spark",
     "Frost", "Ash", "Oak", "Pine", "Hawk", "Wolf", "Fox", "Bear", "Lynx", "Crane", "Raven", "Orca", "Ember", "Drift"),
    ("gate", "ledger", "forge", "well", "mark", "line", "guard", "keep", "vault", "bridge", "shift", "sync", "scope",
     "path", "relay", "stream", "watch", "lens", "grid", "hub", "mesh", "dock", "port", "beam", "loop", "stack",
     "wright", "field", "lock", "cast"),
)
FEATURE_KINDS = ("scheduler", "agent", "controller", "proxy", "indexer", "router", "dashboard", "importer",
                 "resolver", "broker", "exporter", "runner", "operator", "sidecar", "console")
FEATURES = tuple(a + b for a in FEATURE_PARTS[0] for b in FEATURE_PARTS[1])
LANGS = ("bash", "python", "yaml", "json", "javascript", "go", "toml", "sql")
CAMEL = ("max", "min", "retry", "timeout", "pool", "batch", "cache", "queue", "auth", "token", "client", "server",
         "request", "response", "stream", "buffer", "region", "replica", "shard", "index", "log", "trace", "span")


_CUMULATIVE: dict[tuple[int, float], list[float]] = {}


def _zipf(rng: random.Random, seq: tuple, s: float = 0.8):
    """Pick from ``seq`` with a Zipf skew (rank k has weight 1/k**s): a few words common, most rare."""
    key = (len(seq), s)
    cumulative = _CUMULATIVE.get(key)
    if cumulative is None:
        total, cumulative = 0.0, []
        for k in range(1, len(seq) + 1):
            total += 1 / k**s
            cumulative.append(total)
        _CUMULATIVE[key] = cumulative
    return rng.choices(seq, cum_weights=cumulative)[0]


def _s(word: str) -> str:
    """Plural of a noun or third person of a verb, on the last word: batch -> batches, policy -> policies."""
    head, _, last = word.rpartition(" ")
    if last.endswith(("s", "sh", "ch", "x", "z")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _ed(verb: str) -> str:
    last, _, rest = verb.partition(" ")  # "roll back" -> "rolled back"
    if rest:
        return f"{_ed(last)} {rest}"
    if last.endswith("e"):
        last += "d"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ied"
    else:
        last += "ed"
    return last


def _verb_s(verb: str) -> str:
    first, _, rest = verb.partition(" ")
    return f"{_s(first)} {rest}".strip()


def _kebab(identifier: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", identifier).replace("_", "-").replace(".", "-").lower()


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


class _Writer:
    """Deterministic prose for one document."""

    def __init__(self, rng: random.Random, product: str, area: str) -> None:
        self.rng = rng
        self.product = product
        self.area = area.replace("-", " ")
        self.lexicon = tuple(w.replace("-", " ") for w in AREA_TERMS[area].split())
        # Each page has a few topical words and named features that recur, as real pages do.
        self.topic = [rng.choice(self.lexicon) for _ in range(3)] + [_zipf(rng, NOUNS) for _ in range(2)]
        self.features = [f"{_zipf(rng, FEATURES, 1.0)} {rng.choice(FEATURE_KINDS)}" for _ in range(2)]

    def noun(self) -> str:
        rng = self.rng
        u = rng.random()
        if u < 0.3:
            return rng.choice(self.topic)
        if u < 0.55:
            return rng.choice(self.lexicon)
        if u < 0.62:
            return rng.choice(self.features)
        return _zipf(rng, NOUNS)

    def identifier(self) -> str:
        rng = self.rng
        style = rng.random()
        words = [rng.choice(CAMEL) for _ in range(rng.randint(2, 3))]
        if style < 0.4:
            return "_".join(words)
        if style < 0.7:
            return words[0] + "".join(w.title() for w in words[1:])
        if style < 0.85:
            return f"{self.product.upper()}_{'_'.join(w.upper() for w in words)}"
        return f"{self.product.lower()}.{'.'.join(words)}"

    def error_code(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.4:
            return f"{self.product[:3].upper()}-{rng.randint(1000, 9999)}"
        if kind < 0.7:
            return f"HTTP {rng.choice((400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 504))}"
        return f"E{rng.randint(100, 999)}_{rng.choice(CAMEL).upper()}"

    def sentence(self) -> str:
        rng = self.rng
        a, n, v, n2 = rng.choice(ADJECTIVES), self.noun(), rng.choice(VERBS), self.noun()
        p, feature, num = self.product, rng.choice(self.features), rng.randint(2, 120)
        forms = (
            lambda: f"To {v} the {a} {n}, set `{self.identifier()}` in `{rng.choice(FILES)}` and {rng.choice(VERBS)} the {n2}",
            lambda: f"{p} {rng.choice(ADVERBS)} {_verb_s(v)} each {n} when the {n2} becomes {rng.choice(ADJECTIVES)}",
            lambda: f"If the {n} returns {self.error_code()}, {v} the {a} {n2} and try again after {num} seconds",
            lambda: f"{rng.choice(CONNECTIVES)} every {n} is {rng.choice(ADJECTIVES)} and can be {_ed(v)} with `{p.lower()} {v.split()[0]} {n.split()[0].lower()}`",
            lambda: f"The `{self.identifier()}` option controls how the {n} handles {_a(a)} {n2}; the default is {rng.randint(1, 64) * rng.choice((1, 10, 100))}",
            lambda: f"You cannot {v} {_a(n)} that is still attached to {_a(rng.choice(ADJECTIVES))} {n2}, so detach it first",
            lambda: f"{rng.choice(CONNECTIVES)} the {self.area} settings apply to the whole {n}, not to a single {n2}",
            lambda: f"Use the {a} {n} for {self.area} workloads that need {_a(rng.choice(ADJECTIVES))} {n2} and low {rng.choice(('latency', 'cost', 'overhead', 'jitter'))}",
            lambda: f"Each {n} keeps its own {n2}, which the {feature} {rng.choice(ADVERBS)} {_verb_s(v)} every {num} minutes",
            lambda: f"Requests above the {a} {n} are rejected with {self.error_code()} until the {n2} recovers",
            lambda: f"See the {rng.choice(AREAS).replace('-', ' ')} guide to {v} {_a(n)} across {rng.randint(2, 9)} regions",
            lambda: f"{rng.choice(CONNECTIVES)} {p} {_verb_s(v)} the {a} {n} before it {_verb_s(rng.choice(VERBS))} the {n2}",
            lambda: f"The {feature} was introduced in version {rng.randint(1, 9)}.{rng.randint(0, 30)} and replaces the older {n} {rng.choice(('workflow', 'mechanism', 'integration', 'setting'))}",
            lambda: f"Run `{p.lower()} {v.split()[0]} --{_kebab(self.identifier())}` to {v} {_a(n)} from the command line",
            lambda: f"A {n} may take up to {num} seconds to {rng.choice(('propagate', 'settle', 'converge', 'appear', 'expire'))} after you {v} it",
            lambda: f"Only owners and admins can {v} {_a(a)} {n}; other members see a read-only view",
            lambda: f"When the {feature} detects {_a(a)} {n}, it raises an alert and pauses the {n2}",
            lambda: f"Set `{self.identifier()}` to `{rng.choice(('true', 'false', 'auto', 'strict', 'off'))}` if your {n} sits behind {_a(n2)}",
            lambda: f"We recommend keeping the {n} and the {n2} in the same region to avoid cross-region {rng.choice(('egress fees', 'latency', 'consistency issues'))}",
            lambda: f"The {n} is billed per {rng.choice(('hour', 'GB', 'request', 'seat', 'million events'))}, and {_s(n2)} are free up to {num * 10}",
            lambda: f"Older {_s(n)} written before version {rng.randint(1, 4)}.0 must be {_ed(v)} manually",
            lambda: f"{p} stores the {n} encrypted with a per-tenant key and never logs the {n2}",
            lambda: f"Check the {n} status page first: most {self.error_code()} errors come from {_a(a)} {n2}",
            lambda: f"Large {_s(n)} are split into parts of {rng.choice((4, 8, 16, 64))} MB and {_ed(v)} in parallel",
            lambda: f"The {feature} exposes its own {n} on port {rng.randint(1024, 9999)}",
        )
        s = rng.choice(forms)()
        s = s[0].upper() + s[1:]
        return s + rng.choice((".", ".", ".", ".", "!", "."))

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(2, 6)))

    def bullet_list(self) -> str:
        return "\n".join(f"- **{self.identifier()}**: {self.sentence()}" for _ in range(self.rng.randint(3, 6)))

    def code_block(self) -> str:
        rng = self.rng
        lang = rng.choice(LANGS)
        lines = []
        for _ in range(rng.randint(3, 10)):
            ident, value = self.identifier(), rng.randint(1, 5000)
            if lang == "bash":
                lines.append(f"{self.product.lower()} {rng.choice(VERBS).split()[0]} {self.noun().split()[0]} --{_kebab(ident)}={value}")
            elif lang == "python":
                lines.append(f"client.{rng.choice(VERBS).split()[0]}_{self.noun().split()[0].lower()}({ident}={value})")
            elif lang in ("yaml", "toml"):
                sep = ": " if lang == "yaml" else " = "
                lines.append(f"{ident}{sep}{value}")
            elif lang == "json":
                lines.append(f'  "{ident}": {value},')
            elif lang == "javascript":
                lines.append(f"await client.{ident}({{ {rng.choice(CAMEL)}: {value} }});")
            elif lang == "go":
                lines.append(f"cfg.{ident[:1].upper() + ident[1:]} = {value}")
            else:
                lines.append(f"SELECT {ident} FROM {_s(self.noun().split()[0].lower())} WHERE id = {value};")
        return f"```{lang}\n" + "\n".join(lines) + "\n```"


def document(seed: int, index: int, revision: int = 0) -> tuple[str, str]:
    """One Markdown document: (relative path, text). Same (seed, index, revision) -> same bytes."""
    rng = random.Random(f"{seed}:{index}")
    product = PRODUCTS[index % len(PRODUCTS)]
    area = AREAS[(index // len(PRODUCTS)) % len(AREAS)]
    w = _Writer(rng, product, area)
    title = f"{product} {area.replace('-', ' ')}: {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} {w.topic[0]}"
    parts = [f"# {title}", w.paragraph()]
    for _ in range(rng.randint(3, 8)):
        parts.append(f"## {rng.choice(VERBS).capitalize()} {rng.choice(ADJECTIVES)} {_s(w.noun())}")
        for _ in range(rng.randint(1, 4)):
            parts.append(w.paragraph())
        if rng.random() < 0.5:
            parts.append(w.code_block())
        if rng.random() < 0.3:
            parts.append(w.bullet_list())
        for _ in range(rng.randint(0, 2)):
            parts.append(f"### {w.error_code() if rng.random() < 0.3 else rng.choice(ADJECTIVES).title() + ' ' + w.noun()}")
            parts.append(w.paragraph())
            if rng.random() < 0.3:
                parts.append(w.code_block())
    if revision:
        edit = random.Random(f"{seed}:{index}:rev{revision}")
        w.rng = edit
        parts.insert(edit.randint(2, len(parts)), f"## Changes in revision {revision}\n\n{w.paragraph()}")
    path = f"{product.lower()}/{area}/{index:06d}-{title.split(':')[1].strip().lower().replace(' ', '-')}.md"
    return path, "\n\n".join(parts) + "\n"


def chunks_per_document(seed: int, sample: int = 200) -> float:
    """Mean chunks per document with the default ChunkingOptions, from a sample (loader + chunker)."""
    from core.ingest.chunking import chunk_sections
    from core.ingest.loaders import load_document
    from core.ingest.pipeline import ChunkingOptions

    options = ChunkingOptions()
    total = 0
    for i in range(sample):
        path, text = document(seed, i)
        loaded = load_document(text.encode(), name=path)
        total += len(chunk_sections(loaded.sections, max_tokens=options.max_tokens, overlap_tokens=options.overlap_tokens))
    return total / sample


def documents_for(chunks: int, seed: int) -> int:
    """How many documents give at least ``chunks`` chunks (estimated from a sample, with a margin)."""
    return max(1, math.ceil(chunks / chunks_per_document(seed) * 1.04))


def generate(chunks: int, seed: int) -> list[tuple[str, str]]:
    return [document(seed, i) for i in range(documents_for(chunks, seed))]


def write_corpus(folder: Path, docs: list[tuple[str, str]]) -> int:
    size = 0
    for rel, text in docs:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        path.write_bytes(data)
        size += len(data)
    return size


# --------------------------------------------------------------------------- measurement


class CpuClock:
    """CPU seconds of this process and of the local PostgreSQL server (postmaster + backends).

    This machine is shared, so wall time depends on the load; CPU time says what the work costs.
    The server's share is read from /proc (a local server only, e.g. the embedded one); it is
    None when the server is remote or /proc is unavailable.
    """

    def __init__(self, engine) -> None:
        import sqlalchemy as sa

        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._postmaster: int | None = None
        try:
            with engine.connect() as conn:
                data_dir = conn.execute(sa.text("SHOW data_directory")).scalar()
            pid = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
            self._stat(pid)  # readable: a local server
            self._postmaster = pid
        except Exception:
            self._postmaster = None

    def _stat(self, pid: int) -> list[str]:
        raw = Path(f"/proc/{pid}/stat").read_text()
        return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on

    def server(self) -> float | None:
        if self._postmaster is None:
            return None
        fields = self._stat(self._postmaster)
        # utime, stime, cutime, cstime (exited backends are counted in cutime/cstime once reaped)
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                child = self._stat(int(entry.name))
            except OSError:
                continue
            if int(child[1]) == self._postmaster:
                ticks += int(child[11]) + int(child[12])
        return ticks / self._tick

    def read(self) -> tuple[float, float | None]:
        return time.process_time(), self.server()


@dataclass
class Run:
    name: str
    seconds: float
    documents: int  # documents seen
    written_documents: int  # added + updated
    chunks: int  # chunks written
    unchanged: int
    failed: int
    client_cpu_s: float
    server_cpu_s: float | None
    steps: dict[str, float]  # wall seconds per pipeline step

    @property
    def cpu_s(self) -> float:
        return self.client_cpu_s + (self.server_cpu_s or 0.0)

    def row(self) -> list[object]:
        return [
            self.name, self.seconds, self.documents, self.written_documents, self.unchanged, self.chunks,
            f"{self.chunks / self.seconds:,.0f}" if self.chunks else "-",
            f"{self.documents / self.seconds:,.0f}",
            self.client_cpu_s, "-" if self.server_cpu_s is None else self.server_cpu_s,
            f"{self.chunks / self.cpu_s:,.0f}" if self.chunks else "-",
        ]

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["chunks_per_s"] = round(self.chunks / self.seconds, 1)
        data["docs_per_s"] = round(self.documents / self.seconds, 1)
        data["chunks_per_cpu_s"] = round(self.chunks / self.cpu_s, 1) if self.cpu_s else None
        data["steps"] = {k: round(v, 3) for k, v in self.steps.items()}
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in data.items()}


PHASES = ("load", "chunk", "embed", "store", "term_stats", "vector_index")


class PhaseTimer:
    """Wall time per pipeline step, by wrapping (bench-side only) what ``core.ingest.pipeline`` calls.

    Storing runs in writer threads (summed over them) while the main thread loads, chunks and
    embeds the next documents, so "store" overlaps the other steps. The main thread's own steps
    add up; its rest is the folder walk, reading and hashing files, and waiting for a free writer
    ("rest of main thread")."""

    def __init__(self, ingestor) -> None:
        from core.ingest import pipeline

        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        pipeline.load_document = self._wrap("load", pipeline.load_document)
        pipeline.chunk_sections = self._wrap("chunk", pipeline.chunk_sections)
        pipeline.refresh_term_stats = self._wrap("term_stats", pipeline.refresh_term_stats)
        pipeline.ensure_vector_index = self._wrap("vector_index", pipeline.ensure_vector_index)
        ingestor.embedder.embed_documents = self._wrap("embed", ingestor.embedder.embed_documents)
        ingestor._store = self._wrap("store", ingestor._store)

    def _wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def take(self) -> dict[str, float]:
        taken, self.seconds = self.seconds, dict.fromkeys(PHASES, 0.0)
        return taken


def _run(name: str, ingestor, folder: Path, collection: str, clock: CpuClock, phases: PhaseTimer) -> Run:
    phases.take()
    cpu0, server0 = clock.read()
    started = time.perf_counter()
    report = ingestor.ingest([str(folder)], collection=collection)
    seconds = time.perf_counter() - started
    cpu1, server1 = clock.read()
    seen = report.added + report.updated + report.unchanged + len(report.failed)
    steps = phases.take()
    steps["rest of main thread"] = max(0.0, seconds - sum(v for k, v in steps.items() if k != "store"))
    return Run(
        name, seconds, seen, report.added + report.updated, report.chunks, report.unchanged, len(report.failed),
        cpu1 - cpu0, None if server0 is None or server1 is None else server1 - server0, steps,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000, help="at least this many chunks (default 50000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changed", type=float, default=0.01, help="share of documents changed (default 0.01)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from core.search.embeddings import build_embedder
    from core.ingest.pipeline import ChunkingOptions, Ingestor
    from core.storage.timeouts import Work

    workdir = Path(tempfile.mkdtemp(prefix="docrag-bench-corpus-"))
    try:
        t0 = time.perf_counter()
        docs = generate(args.chunks, args.seed)
        folder = workdir / "docs"
        size = write_corpus(folder, docs)
        generate_s = time.perf_counter() - t0

        database = fresh_database()
        embedder = build_embedder("hashing")
        ingestor = Ingestor(sessions=database.sessions_for(Work.INGESTION), embedder=embedder, chunking=ChunkingOptions())

        clock = CpuClock(database.engine)
        phases = PhaseTimer(ingestor)
        load_before = os.getloadavg()[0]
        first = _run("first ingest", ingestor, folder, "bench", clock, phases)
        again = _run("re-ingest, unchanged", ingestor, folder, "bench", clock, phases)
        changed_n = max(1, round(len(docs) * args.changed))
        step = len(docs) / changed_n
        for k in range(changed_n):
            index = int(k * step)
            rel, text = document(args.seed, index, revision=1)
            assert rel == docs[index][0]
            (folder / rel).write_text(text, encoding="utf-8")
        changed = _run(f"re-ingest, {args.changed:.0%} changed", ingestor, folder, "bench", clock, phases)
        load_after = os.getloadavg()[0]
        database.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    ratio = first.seconds / again.seconds if again.seconds else float("inf")
    chunks_per_s = first.chunks / first.seconds
    result = {
        "machine": machine(),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "embedder": embedder.name,
        "corpus": {"documents": len(docs), "bytes": size, "chunks": first.chunks, "generate_s": round(generate_s, 3)},
        "first": first.as_dict(),
        "unchanged": {**again.as_dict(), "speedup": round(ratio, 1)},
        "changed": {**changed.as_dict(), "changed_documents": changed_n},
        "targets": {
            "first_chunks_per_s>=1000": chunks_per_s >= 1000,
            "unchanged_speedup>=20": ratio >= 20,
            "chunks>=requested": first.chunks >= args.chunks,
        },
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"Corpus: {len(docs):,} Markdown files, {size / 1e6:.1f} MB, {first.chunks:,} chunks "
        f"(generated and written in {generate_s:.1f}s); embedder {embedder.name}"
    )
    print(f"{machine()}; load average {load_before:.2f} before, {load_after:.2f} after (other jobs share the CPUs)")
    print(table(
        ["run", "seconds", "docs seen", "docs written", "unchanged", "chunks written", "chunks/s", "docs/s",
         "client CPU s", "server CPU s", "chunks/CPU-s"],
        [first.row(), again.row(), changed.row()],
    ))
    print()
    print("Where the wall time goes (seconds; store = DB transaction per document incl. index maintenance, "
          "summed over the writer threads and overlapping the other steps)")
    names = list(first.steps)
    print(table(["run"] + names, [[r.name] + [r.steps[n] for n in names] for r in (first, again, changed)]))
    print()
    print(f"unchanged re-ingest is {ratio:.1f}x faster than the first ingest (target >= 20x)")
    print(f"first ingest: {chunks_per_s:,.0f} chunks/s (target >= 1,000)")
    for name, ok in result["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
