"""SPF, DKIM and DMARC of incoming mail, and its Authentication-Results field.

``verify`` checks a message as it arrives: SPF of the SMTP client for the
MAIL FROM domain (RFC 7208; the HELO name for a null sender, §2.3), each
DKIM signature (RFC 6376), and DMARC of the From domain with identifier
alignment (RFC 7489 §3.1, §6.6). ``AuthResults.header()`` gives the
``Authentication-Results:`` field to prepend (RFC 8601), folded to 78
columns, with no byte of the input able to start a field of its own.

Every DNS lookup goes through our async ``Resolver``, so tests use the
loopback DNS server and nothing blocks the event loop:

- SPF is pyspf's: the evaluation (macros, include, redirect, the limits of
  §4.6.4) is intricate and pyspf is the reference implementation. pyspf
  only does blocking lookups through its module function ``DNSLookup``, so
  it runs in a worker thread of its own pool, and ``DNSLookup`` is replaced
  (once, at import) by one that hands each query to the resolver on the
  event loop and waits for the answer. The replacement serves only threads
  that set a bridge; any other caller gets pyspf's own lookup.
- DKIM is dkimpy's. Its verifier takes a ``dnsfunc``: we read the
  signatures' selectors and domains first, fetch their keys concurrently
  on the loop, then hand dkimpy the answers; the hashing and the RSA work
  run in a worker thread.
- DMARC is ours, on our resolver: authheaders' DMARC re-reads the public
  suffix list on every call (about 80 ms each) and cannot tell a missing
  record from a DNS failure. The organizational domain comes from the
  public suffix list authheaders ships, read once with publicsuffix2.

Bounds: at most ``MAX_SIGNATURES`` DKIM signatures are checked (a message
with fifty gets five results); all lookups of one message share one
deadline of ``dns_timeout`` seconds, after which what is unfinished is a
temperror. Garbage (headers that do not parse, broken signatures, invalid
names) gives permerror, fail or none, never an exception.

# Limitation: the HELO identity is checked only for a null sender; RFC 7208
# §2.3 recommends checking it too. ARC (RFC 8617) is not evaluated.
# Limitation: more than SPF_THREADS SPF checks at once queue for a thread
# while their deadline runs; a queued check past it is a temperror.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.resources
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

import dkim as dkimpy  # type: ignore[import-untyped]
import publicsuffix2  # type: ignore[import-untyped]
import spf  # type: ignore[import-untyped]

from nubo.mail.dns import DnsError, NxDomain, Resolver

log = logging.getLogger(__name__)

MAX_SIGNATURES = 5
SPF_THREADS = 32
MAX_FROM_DOMAINS = 3
MAX_PROPERTY = 256  # longer property values are left out of the header field

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")

_spf_pool = concurrent.futures.ThreadPoolExecutor(
    max_workers=SPF_THREADS, thread_name_prefix="nubo-spf"
)

# dkimpy logs a failed key at ERROR with the signature's details; its
# findings reach the operator through the results instead.
_quiet = logging.Logger("nubo.mail.authcheck.dkimpy", level=logging.CRITICAL + 1)


@dataclass(frozen=True)
class Signature:
    """The outcome of one DKIM signature (RFC 8601 §2.7.1)."""

    result: str
    domain: str = ""  # header.d
    selector: str = ""  # header.s
    b: str = ""  # header.b: the first 8 characters of b= (RFC 6008)
    reason: str = ""


@dataclass(frozen=True)
class AuthResults:
    """What ``verify`` found; ``header()`` writes it as a header field."""

    authserv_id: str
    spf: str
    dkim: str
    dmarc: str
    spf_identity: str = ""  # "mailfrom" or "helo"
    spf_subject: str = ""  # the address (or HELO name) SPF checked
    signatures: tuple[Signature, ...] = ()
    dmarc_policy: str = ""  # "none", "quarantine" or "reject" when published
    from_domain: str = ""

    def header(self) -> str:
        """The ``Authentication-Results:`` field, CRLF-terminated."""
        return _header(self)


async def verify(
    message: bytes,
    *,
    client_ip: str,
    helo: str,
    mail_from: str,
    resolver: Resolver,
    authserv_id: str,
) -> AuthResults:
    """SPF, DKIM and DMARC of ``message``; never raises on bad input."""
    deadline = time.monotonic() + resolver.timeout
    sender = mail_from.strip().removeprefix("<").removesuffix(">").strip()
    identity = "mailfrom" if sender else "helo"
    subject = sender or helo

    spf_task = asyncio.ensure_future(
        _check_spf(client_ip, sender, helo, resolver, deadline)
    )
    dkim_task = asyncio.ensure_future(_check_dkim(message, resolver))
    spf_result = await _until(spf_task, deadline, "temperror")
    dkim_found = await _until(dkim_task, deadline, None)

    if dkim_found is None:  # out of time: no signature or author known
        dkim_found = _DkimFound((Signature("temperror"),), ())
        dmarc = _Dmarc("temperror")
    else:
        spf_domain = subject.rpartition("@")[2].lower().rstrip(".")
        dmarc_task = asyncio.ensure_future(
            _check_dmarc(dkim_found, spf_result, spf_domain, resolver)
        )
        dmarc = await _until(dmarc_task, deadline, _Dmarc("temperror"))

    results = AuthResults(
        authserv_id=authserv_id,
        spf=spf_result,
        dkim=_summary(dkim_found.signatures),
        dmarc=dmarc.result,
        spf_identity=identity,
        spf_subject=subject,
        signatures=dkim_found.signatures,
        dmarc_policy=dmarc.policy,
        from_domain=dmarc.from_domain,
    )
    log.debug(
        "authentication results spf=%s dkim=%s dmarc=%s",
        results.spf,
        results.dkim,
        results.dmarc,
    )
    return results


async def _until(task: asyncio.Future[Any], deadline: float, fallback: Any) -> Any:
    """The task's result, or ``fallback`` once the deadline has passed."""
    try:
        return await asyncio.wait_for(task, max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return fallback


# -- SPF (RFC 7208) ----------------------------------------------------------


async def _check_spf(
    client_ip: str, sender: str, helo: str, resolver: Resolver, deadline: float
) -> str:
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return "permerror"  # no client address to check: a fault upstream
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped

    loop = asyncio.get_running_loop()
    bridge = _Bridge(resolver, loop, deadline)
    try:
        return await loop.run_in_executor(
            _spf_pool, bridge.check_spf, str(address), sender, helo
        )
    except asyncio.CancelledError:
        bridge.stop()  # the thread's next (or current) lookup fails at once
        raise


class _Bridge:
    """pyspf's DNS, answered by the async resolver on the event loop."""

    def __init__(
        self, resolver: Resolver, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> None:
        self.resolver = resolver
        self.loop = loop
        self.deadline = deadline
        self.current: concurrent.futures.Future[list[Any]] | None = None

    def stop(self) -> None:
        """From the loop: nobody waits for the result any more."""
        self.deadline = float("-inf")
        if self.current is not None:
            self.current.cancel()

    def check_spf(self, client_ip: str, sender: str, helo: str) -> str:
        """In a worker thread: pyspf's check_host() result."""
        _local.bridge = self
        try:
            result, _code, _explanation = spf.query(
                i=client_ip, s=sender, h=helo, timeout=self.resolver.timeout
            ).check()
        # pyspf reports some malformed input (a name, a record) with
        # built-in exceptions rather than its PermError.
        except (ValueError, TypeError, IndexError, UnicodeError, AttributeError):
            return "permerror"
        finally:
            _local.bridge = None
        return result if result in RESULTS else "permerror"

    def lookup(self, name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
        """pyspf's DNSLookup contract: ((name, type), value) pairs."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise spf.TempError("DNS lookup time exceeded")
        future = asyncio.run_coroutine_threadsafe(
            self.resolver.records(name, qtype), self.loop
        )
        self.current = future
        try:
            found = future.result(timeout=remaining)
        except TimeoutError:
            future.cancel()
            raise spf.TempError("DNS lookup time exceeded") from None
        except concurrent.futures.CancelledError:  # the loop is shutting down
            raise spf.TempError("DNS lookup cancelled") from None
        except NxDomain:
            return []
        except DnsError as exc:
            if exc.temporary:
                raise spf.TempError(str(exc)) from None
            return []
        return [((name, qtype), _spf_value(qtype, rdata)) for rdata in found]


def _spf_value(qtype: str, rdata: Any) -> Any:
    if qtype in ("A", "AAAA"):
        return rdata.address
    if qtype == "MX":
        return (rdata.preference, rdata.exchange.to_text(omit_final_dot=True))
    if qtype == "PTR":
        return rdata.target.to_text(omit_final_dot=True)
    return list(rdata.strings)  # TXT, SPF: the strings, as bytes


_local = threading.local()
_pyspf_lookup = spf.DNSLookup


def _lookup(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> Any:
    bridge: _Bridge | None = getattr(_local, "bridge", None)
    if bridge is None:
        return _pyspf_lookup(name, qtype, strict, timeout)
    return bridge.lookup(name, qtype)


spf.DNSLookup = _lookup


# -- DKIM (RFC 6376) -----------------------------------------------------------


@dataclass(frozen=True)
class _DkimFound:
    signatures: tuple[Signature, ...]
    from_values: tuple[bytes, ...]


@dataclass(frozen=True)
class _Pending:
    """A signature whose fields parsed, waiting for its key."""

    index: int
    domain: str
    selector: str
    b: str


async def _check_dkim(message: bytes, resolver: Resolver) -> _DkimFound:
    verifier, pending, done, from_values = await asyncio.to_thread(
        _read_signatures, message
    )
    if pending:
        names = {_key_name(sig) for sig in pending}
        fetched = await asyncio.gather(*(_fetch_key(resolver, n) for n in names))
        keys = dict(zip(names, fetched, strict=True))
        done += await asyncio.to_thread(_verify_all, verifier, pending, keys)
    in_order = tuple(signature for _index, signature in sorted(done))
    return _DkimFound(in_order, from_values)


def _read_signatures(
    message: bytes,
) -> tuple[Any, list[_Pending], list[tuple[int, Signature]], tuple[bytes, ...]]:
    """In a thread: the parsed message; its signatures, those already judged
    (their fields are wrong) apart from those that need their key; its From
    field bodies."""
    try:
        verifier = dkimpy.DKIM(message, logger=_quiet, minkey=1024)
    except (dkimpy.DKIMException, ValueError, TypeError, IndexError) as exc:
        log.debug("dkim: header section does not parse (%s)", type(exc).__name__)
        return None, [], [], ()

    headers = verifier.headers
    from_values = tuple(value for name, value in headers if name.lower() == b"from")
    found = [value for name, value in headers if name.lower() == b"dkim-signature"]
    pending: list[_Pending] = []
    done: list[tuple[int, Signature]] = []
    for index, value in enumerate(found[:MAX_SIGNATURES]):
        try:
            tags = dkimpy.util.parse_tag_value(value)
            domain = tags[b"d"].decode("ascii").strip().lower()
            selector = tags[b"s"].decode("ascii").strip().lower()
        except (dkimpy.util.InvalidTagValueList, KeyError, UnicodeError):
            done.append((index, Signature("permerror", reason="bad signature field")))
            continue
        b = re.sub(rb"\s+", b"", tags.get(b"b", b""))[:8].decode("ascii", "replace")
        try:
            # Required tags, versions, expiry (RFC 6376 §6.1.1), before any
            # lookup is made for the signature.
            verifier.verify_headerprep(index)
        except (dkimpy.DKIMException, ValueError, TypeError, IndexError, KeyError):
            bad = Signature("permerror", domain, selector, b, "bad signature field")
            done.append((index, bad))
            continue
        pending.append(_Pending(index, domain, selector, b))
    return verifier, pending, done, from_values


def _key_name(sig: _Pending) -> str:
    return f"{sig.selector}._domainkey.{sig.domain}"


async def _fetch_key(resolver: Resolver, name: str) -> str | DnsError:
    try:
        records = await resolver.txt(name)
    except DnsError as exc:
        return exc
    # Several records for one key: RFC 6376 §3.6.2.2 leaves the choice to
    # the verifier; the first one is taken.
    return records[0] if records else NxDomain(name)


def _verify_all(
    verifier: Any, pending: Sequence[_Pending], keys: dict[str, str | DnsError]
) -> list[tuple[int, Signature]]:
    """In a thread: each signature against its key."""
    return [
        (sig.index, _verify_one(verifier, sig, keys[_key_name(sig)])) for sig in pending
    ]


def _verify_one(verifier: Any, sig: _Pending, key: str | DnsError) -> Signature:
    def result(outcome: str, reason: str = "") -> Signature:
        return Signature(outcome, sig.domain, sig.selector, sig.b, reason)

    if isinstance(key, DnsError):
        return result("temperror" if key.temporary else "permerror", "no key")
    record = key.encode("utf-8", "replace")
    try:
        dkimpy.evaluate_pk(_key_name(sig).encode(), record)
    except (dkimpy.DKIMException, ValueError, TypeError, IndexError, KeyError):
        return result("permerror", "bad key")

    try:
        valid = verifier.verify(sig.index, dnsfunc=lambda _name, timeout=0: record)
    except dkimpy.ValidationError:
        return result("fail", "body hash mismatch")
    except dkimpy.KeyFormatError:
        return result("permerror", "bad key")  # such as shorter than 1024 bits
    except (dkimpy.DKIMException, ValueError, TypeError, IndexError, KeyError):
        return result("permerror", "bad signature")
    return result("pass") if valid else result("fail", "signature did not verify")


def _summary(signatures: Sequence[Signature]) -> str:
    """One word for all signatures: any pass wins, then the most telling."""
    found = {sig.result for sig in signatures}
    for word in ("pass", "temperror", "fail", "permerror"):
        if word in found:
            return word
    return "none"


# -- DMARC (RFC 7489) ----------------------------------------------------------


@dataclass(frozen=True)
class _Dmarc:
    result: str
    policy: str = ""
    from_domain: str = ""


async def _check_dmarc(
    dkim_found: _DkimFound, spf_result: str, spf_domain: str, resolver: Resolver
) -> _Dmarc:
    domains = _from_domains(dkim_found.from_values)
    if not domains:
        return _Dmarc("permerror")  # RFC 7489 §6.6.1: no single author domain
    await _ensure_suffix_list()

    dkim_domains = [s.domain for s in dkim_found.signatures if s.result == "pass"]
    underlying_temp = spf_result == "temperror" or any(
        s.result == "temperror" for s in dkim_found.signatures
    )
    spf_passed = spf_domain if spf_result == "pass" else None
    outcomes = await asyncio.gather(
        *(
            _dmarc_for(domain, spf_passed, dkim_domains, underlying_temp, resolver)
            for domain in domains
        )
    )
    # Several author domains (§6.6.1): the worst outcome stands.
    for word in ("fail", "temperror", "permerror", "none", "pass"):
        for outcome in outcomes:
            if outcome.result == word:
                return outcome
    return outcomes[0]


async def _dmarc_for(
    from_domain: str,
    spf_domain: str | None,
    dkim_domains: Sequence[str],
    underlying_temp: bool,
    resolver: Resolver,
) -> _Dmarc:
    org = _organizational_domain(from_domain)
    try:
        record = await _dmarc_record(resolver, from_domain)
        policy_key = "p"
        if record is None and org != from_domain:
            record = await _dmarc_record(resolver, org)
            policy_key = "sp"  # §6.6.3: the org's policy for its subdomains
    except DnsError:
        return _Dmarc("temperror", from_domain=from_domain)
    if record is None:
        return _Dmarc("none", from_domain=from_domain)

    policy = record.get(policy_key) or record["p"]
    aligned = _aligned(from_domain, org, spf_domain, record.get("aspf")) or any(
        _aligned(from_domain, org, d, record.get("adkim")) for d in dkim_domains
    )
    if aligned:
        return _Dmarc("pass", policy, from_domain)
    return _Dmarc("temperror" if underlying_temp else "fail", policy, from_domain)


def _aligned(from_domain: str, org: str, domain: str | None, mode: str | None) -> bool:
    """Identifier alignment (RFC 7489 §3.1): strict, or relaxed by default."""
    if not domain:
        return False
    if mode == "s":
        return domain == from_domain
    return _organizational_domain(domain) == org


async def _dmarc_record(resolver: Resolver, domain: str) -> dict[str, str] | None:
    """The one DMARC record at ``_dmarc.domain``, or None (§6.6.3).

    Raises DnsError only for a temporary failure.
    """
    try:
        texts = await resolver.txt(f"_dmarc.{domain}")
    except DnsError as exc:
        if exc.temporary:
            raise
        return None
    records = [tags for tags in map(_dmarc_tags, texts) if tags is not None]
    return records[0] if len(records) == 1 else None


_POLICIES = ("none", "quarantine", "reject")


def _dmarc_tags(text: str) -> dict[str, str] | None:
    """A record's tags, or None if it is not a usable DMARC record."""
    pairs = [part.strip().partition("=") for part in text.split(";") if part.strip()]
    if not pairs or pairs[0][0].strip() != "v" or pairs[0][2].strip() != "DMARC1":
        return None
    tags = {name.strip().lower(): value.strip() for name, _eq, value in pairs}
    policy = tags.get("p", "").lower()
    if policy not in _POLICIES:
        # §6.6.3 step 6: a record with reports but no valid policy means p=none.
        if not tags.get("rua"):
            return None
        policy = "none"
    tags["p"] = policy
    if tags.get("sp", "").lower() not in _POLICIES:
        tags.pop("sp", None)
    else:
        tags["sp"] = tags["sp"].lower()
    for mode in ("adkim", "aspf"):
        tags[mode] = "s" if tags.get(mode, "").lower() == "s" else "r"
    return tags


def _from_domains(values: Sequence[bytes]) -> list[str]:
    """The distinct author domains of the From field(s), A-labels."""
    texts = [value.decode("utf-8", "replace").replace("\r\n", "") for value in values]
    found: list[str] = []
    for _name, address in getaddresses(texts):
        domain = address.rpartition("@")[2].strip().rstrip(".").lower()
        if not address.count("@") or not domain:
            continue
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            continue
        if domain not in found:
            found.append(domain)
    return found[:MAX_FROM_DOMAINS]


_suffix_list: Any = None


async def _ensure_suffix_list() -> None:
    """Read the public suffix list once, off the event loop (about 0.1 s)."""
    global _suffix_list
    if _suffix_list is None:
        _suffix_list = await asyncio.to_thread(_read_suffix_list)


def _read_suffix_list() -> Any:
    ref = importlib.resources.files("authheaders") / "public_suffix_list.txt"
    with importlib.resources.as_file(ref) as path:
        return publicsuffix2.PublicSuffixList(str(path))


def _organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label."""
    found = _suffix_list.get_sld(domain, strict=True) if _suffix_list else None
    if found:
        return str(found)
    # A suffix the list does not know falls under its default rule "*".
    return ".".join(domain.split(".")[-2:])


# -- the header field (RFC 8601 §2.2) ------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_ADDRESS = re.compile(r"[!#$%&'*+\-/=?^_`{|}~.0-9A-Za-z]*@[\-.0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _header(results: AuthResults) -> str:
    spf_property = (
        "smtp.mailfrom" if results.spf_identity == "mailfrom" else "smtp.helo"
    )
    resinfos = [
        _resinfo("spf", results.spf, props=[(spf_property, results.spf_subject)])
    ]
    for sig in results.signatures or (Signature("none"),):
        props = [("header.d", sig.domain), ("header.s", sig.selector)]
        props.append(("header.b", sig.b))
        resinfos.append(_resinfo("dkim", sig.result, reason=sig.reason, props=props))
    resinfos.append(
        _resinfo(
            "dmarc",
            results.dmarc,
            comment=f"(p={results.dmarc_policy})" if results.dmarc_policy else "",
            props=[("header.from", results.from_domain)],
        )
    )

    lines = [f"Authentication-Results: {_value(results.authserv_id) or 'unknown'};"]
    for number, words in enumerate(resinfos):
        last = number == len(resinfos) - 1
        lines.extend(_fold(words, "" if last else ";"))
    return "\r\n".join(lines) + "\r\n"


def _resinfo(
    method: str,
    result: str,
    *,
    reason: str = "",
    comment: str = "",
    props: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """``method=result [reason="..."] [(comment)] name=value ...``, as words."""
    words = [f"{method}={result}"]
    if reason:
        words.append(f'reason="{reason}"')
    if comment:
        words.append(comment)
    for name, raw in props:
        value = _value(raw)
        if value:
            words.append(f"{name}={value}")
    return words


def _value(raw: str) -> str:
    """A property value: as is when it is a token or an address, else quoted.

    Control characters (CR and LF above all) are dropped, so nothing in the
    input can end the field; an overlong value is left out.
    """
    text = _CONTROL.sub("", raw).strip()
    if not text or len(text) > MAX_PROPERTY:
        return ""
    if _TOKEN.fullmatch(text) or _ADDRESS.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fold(words: Sequence[str], end: str) -> list[str]:
    """One resinfo on as few lines as fit in 78 columns, each line indented."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else f" {word}"
        if current and len(candidate) + len(end) > 78:
            lines.append(current)
            current = f"  {word}"
        else:
            current = candidate
    lines.append(current + end)
    return lines
